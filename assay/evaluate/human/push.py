"""`assay eval human push`: a blind side-by-side comparison of a candidate and its baseline, in Argilla.

Both sides answer the same prompts (through the scoring layer, batched; baseline answers are
remembered like every baseline score). Each record shows the prompt and two answers, A and B, whose
order is drawn at random per record; which side is which is kept only in the workspace
(`derived/human/<dataset>.json`), never in Argilla: not in fields, metadata, record ids (an HMAC of
the workspace key), suggestions (there are none) or the dataset's name.

    pushed = push_comparison(ws, "mv-1a2b3c4d5e6f", sample=50)
    pushed.dataset, pushed.url
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assay.errors import InputError
from assay.store.atomic import write_bytes_atomic
from assay.store.manifest import now_iso

CHOICES = ["A", "B", "tie"]
GUIDELINES = """## Which answer is better?

Each record shows a prompt and two answers, **A** and **B**, written by two different systems. Their order
is random for every record, so A is not always the same system: judge each record on its own.

- **preference**: the better answer, or **tie** when neither is better (both good, or both bad).
- **rating_a / rating_b**: 1 = unusable … 5 = exemplary, each answer on its own merits.
- **issues** (optional) and **comment** (optional): what made the difference.
"""


@dataclass(frozen=True)
class Pushed:
    dataset: str
    url: str
    session: str
    model: str
    baseline: dict[str, Any]
    records: int
    added: int
    min_submitted: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mapping_path(ws: Any, dataset: str) -> Path:
    return ws.layout.derived / "human" / f"{dataset}.json"


def spec(*, categories: bool, min_submitted: int, issues: list[str]) -> dict[str, Any]:
    """The comparison dataset: prompt and two answers; preference, a rating per answer, issues, comment."""
    return {
        "fields": {name: {"type": "text", "required": True} for name in ("prompt", "answer_a", "answer_b")},
        "questions": {
            "preference": {"type": "label_selection", "options": list(CHOICES), "required": True},
            "rating_a": {"type": "rating", "options": [1, 2, 3, 4, 5], "required": False},
            "rating_b": {"type": "rating", "options": [1, 2, 3, 4, 5], "required": False},
            "issues": {"type": "multi_label_selection", "options": list(issues), "required": False},
            "comment": {"type": "text", "required": False},
        },
        "metadata": {"category": "terms"} if categories else {},
        "vectors": {},
        "min_submitted": min_submitted,
    }


def push_comparison(ws: Any, model_ref: str, *, baseline: str | None = None, sample: int | None = None,
                    prompts: str | None = None, dataset: str | None = None, config: Any = None, store: Any = None,
                    answers: Any = None, progress: Any = None) -> Pushed:
    """Generate both sides' answers for a sample of prompts and push them blind for rating.

    `answers` (for tests) replaces the model calls: `answers(items) -> (candidate texts, baseline texts)`.
    """
    from assay.evaluate.loading import resolve_baseline
    from assay.label.client import using_store
    from assay.label.store import ReviewRecord

    cfg = config or ws.config
    human = cfg.eval.human
    model = ws.models.get(model_ref)
    other = resolve_baseline(ws, model, baseline or cfg.eval.baseline)
    items = choose(load_items(ws, model, prompts, human.category_column), sample or human.sample, seed=cfg.eval.seed)
    candidate, base = answers(items) if answers else _generate(ws, model, other, items, cfg, progress)
    session = hashlib.sha256(json.dumps([model.id, getattr(other, "id", None), [i.id for i in items], cfg.eval.seed]).encode()).hexdigest()[:12]
    name = dataset or f"compare-{session}"
    rng = random.Random(f"{cfg.eval.seed}:{session}")
    layout, records = {}, []
    for item, c, b in zip(items, candidate, base, strict=True):
        a_is_candidate = rng.random() < 0.5
        rid = _blind_id(ws.key(), session, item.id)
        layout[rid] = {"item": item.id, "a": "candidate" if a_is_candidate else "baseline", "category": item.category,
                       "prompt": item.messages[-1]["content"], "candidate": c, "baseline": b}
        fields = {"prompt": item.messages[-1]["content"], "answer_a": (c if a_is_candidate else b) or "(empty)",
                  "answer_b": (b if a_is_candidate else c) or "(empty)"}
        records.append(ReviewRecord(rid, fields, {"category": item.category} if item.category else {}))
    wanted = spec(categories=any(i.category for i in items), min_submitted=human.min_submitted, issues=cfg.label.issues)
    with using_store(ws.root, cfg.label, store) as review:
        ref, _ = review.ensure_dataset(name, wanted, version_id=session, guidelines=GUIDELINES)
        missing = [r for r in records if r.id not in review.existing_ids(ref)]
        review.upload(ref, missing, batch_size=cfg.label.batch_size)
    baseline_info = {"kind": "model" if other is not None else "base", "id": getattr(other, "id", None)}
    _save(ws, name, {"session": session, "dataset": name, "model": model.id, "baseline": baseline_info,
                     "report": _latest_report(ws, model.id), "created_at": now_iso(), "items": layout})
    return Pushed(name, ref.url, session, model.id, baseline_info, len(records), len(missing), ref.min_submitted)


def load_items(ws: Any, model: Any, prompts: str | None, category_column: str | None) -> list[Any]:
    """Prompt/answer items from a file or dataset version, else the test split of the model's data."""
    import polars as pl

    from assay.errors import NotFoundError
    from assay.evaluate.checks.rows import items, read_eval_file
    from assay.schema import SPLIT

    if prompts:
        try:
            frame = ws.datasets.get(prompts).data().collect()
        except NotFoundError:
            frame = read_eval_file(Path(prompts))
    else:
        frames = [ws.datasets.get(vid).data().collect() for vid in model.entry.parents]
        frame = pl.concat(frames, how="diagonal_relaxed")
        frame = frame.filter(pl.col(SPLIT) == "test") if SPLIT in frame.columns else frame.clear()
    found = items(frame, category_column=category_column if category_column and category_column in frame.columns else None)
    if not found:
        where = prompts or f"the test split of {', '.join(model.entry.parents)}"
        raise InputError(f"no prompt/answer rows in {where} to compare on", hint="pass --prompts FILE_OR_VERSION with prompt/response rows")
    return found


def choose(found: list[Any], n: int, *, seed: int) -> list[Any]:
    """A seeded sample of `n` items, stratified by category (each category keeps its share)."""
    if len(found) <= n:
        return found
    rng = random.Random(seed)
    groups: dict[Any, list[Any]] = {}
    for item in found:
        groups.setdefault(item.category, []).append(item)
    quota = {k: max(1, round(n * len(v) / len(found))) for k, v in groups.items()}
    picked = [item for k, group in sorted(groups.items(), key=lambda kv: str(kv[0])) for item in rng.sample(group, min(quota[k], len(group)))]
    return sorted(picked[:n], key=found.index)


def _generate(ws: Any, model: Any, other: Any, items: list[Any], cfg: Any, progress: Any) -> tuple[list[str], list[str]]:
    from assay.evaluate.checks.rows import prompt_text
    from assay.evaluate.loading import open_sides
    from assay.evaluate.run import scoring_settings
    from assay.evaluate.scoring import GenerationSettings

    sides = open_sides(ws, model, other, scoring_settings(cfg.eval), remember=cfg.eval.cache_baseline)
    generation = GenerationSettings(max_new_tokens=cfg.eval.human.max_new_tokens)
    contexts = [(prompt_text(sides.tokenizer, item), generation) for item in items]
    out = {}
    for side, scoring in sides.sides():
        if progress:
            progress(f"human: {len(items)} answers from the {side}")
        with scoring as scorer:
            out[side] = scorer.generate(contexts)
    return out["candidate"], out["baseline"]


def _blind_id(key: bytes, session: str, item: str) -> str:
    """A record id that reveals nothing (not the row id, not the side): an HMAC under the workspace key."""
    return hmac.new(key, f"{session}:{item}".encode(), hashlib.sha256).hexdigest()[:24]


def _latest_report(ws: Any, model_id: str) -> str | None:
    reports = ws.reports.for_model(model_id)
    return reports[0].id if reports else None


def _save(ws: Any, name: str, layout: dict[str, Any]) -> None:
    path = mapping_path(ws, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, (json.dumps(layout, indent=2, ensure_ascii=False) + "\n").encode(), mode=0o600)
