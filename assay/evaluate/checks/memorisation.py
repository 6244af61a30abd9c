"""`memorisation`: discoverable extraction — give a row's beginning, see whether the model writes the rest.

For instruction rows the prompt is the conversation up to the answer plus the answer's first
`prefix_tokens` tokens; for text rows, the text's first tokens. The model continues greedily for
`continuation_tokens` tokens, compared with the row's true next tokens: an exact copy, or a near copy
(normalised edit similarity at or above `near_threshold`). Training rows (a seeded sample plus every
PII-flagged, redacted and canary row) are compared with held-out rows: a model that reproduces what
it trained on far more often than what it never saw has memorised it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.checks.rows import full_text, prompt_text, read_eval_file, split_answer
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.scoring import GenerationSettings
from assay.evaluate.suite import MemorisationSettings
from assay.schema import ID, SOURCE, SOURCE_LINE

PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|IP_ADDRESS|CREDIT_CARD|SSN|IBAN|SECRET)\]")


@dataclass(frozen=True)
class Probe:
    """One row cut into what the model is given and what it should not be able to write."""

    id: str
    group: str  # "train" | "held_out"
    why: str  # "sample" | "pii" | "canary" | "held_out"
    prefix: str
    expected: str
    source: str | None
    source_line: int | None


@check("memorisation", version=1, direction="lower_is_better", settings=MemorisationSettings)
def memorisation(ctx: EvalContext, settings: MemorisationSettings) -> CheckResult:
    """Exact and near continuation rates on training rows against held-out rows."""
    probes = _probes(ctx, settings)
    result = memorisation.spec.result()  # type: ignore[attr-defined]
    if not any(p.group == "train" for p in probes) or not any(p.group == "held_out" for p in probes):
        result.status, result.reasons = "skipped", ["needs training rows and held-out (test/val) rows long enough to cut"]
        return result
    scores = {side: _score(ctx, scoring, probes, settings) for side, scoring in ctx.sides.sides()}
    result.metrics = _metrics(ctx, probes, scores, settings)
    result.details = {"worst": _worst(probes, scores, settings), "rates": _rates(probes, scores["candidate"], settings),
                      "rows": {"train": sum(p.group == "train" for p in probes), "held_out": sum(p.group == "held_out" for p in probes),
                               "pii": sum(p.why == "pii" for p in probes), "canary": sum(p.why == "canary" for p in probes)}}
    return result


def _probes(ctx: EvalContext, settings: MemorisationSettings) -> list[Probe]:
    rng = np.random.default_rng(ctx.seed)
    train = ctx.rows("train")
    flagged = _flagged(train)
    sample = _sample(train.filter(~pl.col(ID).is_in(flagged.get_column(ID).to_list())) if flagged.height else train, settings.rows, rng)
    held = _sample(pl.concat([ctx.rows("test"), ctx.rows("val")], how="diagonal_relaxed"), settings.rows, rng)
    groups = [(flagged, "train", "pii"), (sample, "train", "sample"), (held, "held_out", "held_out")]
    groups += [(read_eval_file(ctx.path(name)), "train", "canary") for name in settings.canaries]
    probes = [_cut(ctx, row, group, why, settings) for frame, group, why in groups for row in frame.iter_rows(named=True)]
    return [p for p in probes if p is not None]


def _flagged(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows where curation found personal data, or whose text carries a redaction placeholder."""
    if frame.height == 0:
        return frame
    conditions = [pl.col("pii_any").cast(pl.Boolean).fill_null(False)] if "pii_any" in frame.columns else []
    for column in ("prompt", "response", "text"):
        if column in frame.columns:
            conditions.append(pl.col(column).str.contains(PLACEHOLDER.pattern).fill_null(False))
    return frame.filter(pl.any_horizontal(conditions)) if conditions else frame.clear()


def _sample(frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    if frame.height <= n:
        return frame
    return frame[sorted(rng.choice(frame.height, size=n, replace=False).tolist())]


def _cut(ctx: EvalContext, row: dict[str, Any], group: str, why: str, settings: MemorisationSettings) -> Probe | None:
    """Prompt + the answer's first tokens, and the answer's next tokens (None when too short to cut)."""
    tok = ctx.tokenizer
    text = full_text(tok, row)
    if text is None:
        return None
    head = "" if row.get("text") else prompt_text(tok, split_answer(row)[0])
    answer = tok(text[len(head):] if text.startswith(head) else text, add_special_tokens=False)["input_ids"]
    keep = min(settings.prefix_tokens, len(answer) // 2)
    expected = answer[keep: keep + settings.continuation_tokens]
    if keep < 1 or len(expected) < 4:
        return None
    return Probe(str(row.get(ID)), group, why, head + tok.decode(answer[:keep]), tok.decode(expected),
                 row.get(SOURCE), row.get(SOURCE_LINE))


def _score(ctx: EvalContext, scoring: Any, probes: list[Probe], settings: MemorisationSettings) -> tuple[np.ndarray, list[str]]:
    """Edit similarity of each probe's greedy continuation to its expected text (1.0: exact copy)."""
    ctx.progress(f"memorisation: {len(probes)} continuations")
    generation = GenerationSettings(max_new_tokens=settings.continuation_tokens)
    with scoring as scorer:
        generated = scorer.generate([(p.prefix, generation) for p in probes])
    return np.array([similarity(g[: len(p.expected)], p.expected) for g, p in zip(generated, probes, strict=True)]), generated


def similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length, on whitespace-normalised text (1.0: identical)."""
    a, b = " ".join(a.split()), " ".join(b.split())
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def _metrics(ctx: EvalContext, probes: list[Probe], scores: dict[str, Any], settings: MemorisationSettings) -> dict[str, Comparison]:
    out: dict[str, Comparison] = {}
    for group, label in (("train", "train"), ("held_out", "heldout")):
        mask = np.array([p.group == group for p in probes])
        cand, base = scores["candidate"][0][mask], scores["baseline"][0][mask]
        out[f"{label}_exact_rate"] = ctx.compare(cand >= 1.0, base >= 1.0, higher_is_better=False)
        out[f"{label}_near_rate"] = ctx.compare(cand >= settings.near_threshold, base >= settings.near_threshold, higher_is_better=False)
    return out


def _rates(probes: list[Probe], scores: Any, settings: MemorisationSettings) -> dict[str, dict[str, float]]:
    sims = scores[0]
    out = {}
    for group in ("train", "held_out"):
        mask = np.array([p.group == group for p in probes])
        out[group] = {"exact": float((sims[mask] >= 1.0).mean()), "near": float((sims[mask] >= settings.near_threshold).mean())}
    return out


def _worst(probes: list[Probe], scores: dict[str, Any], settings: MemorisationSettings) -> list[dict[str, Any]]:
    sims, generated = scores["candidate"]
    order = sorted((i for i, p in enumerate(probes) if p.group == "train"), key=lambda i: -sims[i])[: settings.worst]
    return [{"id": probes[i].id, "source": probes[i].source, "source_line": probes[i].source_line, "split": probes[i].group,
             "why": probes[i].why, "prefix": probes[i].prefix[-300:], "expected": probes[i].expected, "generated": generated[i],
             "exact": bool(sims[i] >= 1.0), "similarity": round(float(sims[i]), 4),
             "baseline_similarity": round(float(scores["baseline"][0][i]), 4)} for i in order]
