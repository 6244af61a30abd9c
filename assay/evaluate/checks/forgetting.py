"""`forgetting`: is general ability kept? Perplexity on plain text and accuracy on multiple choice.

Perplexity: every text's rolling log-likelihood (lm-eval's `loglikelihood_rolling`) on both sides;
the ratio exp(NLL_c / tokens - NLL_b / tokens) over the whole set, token-weighted as lm-eval
aggregates, with a paired bootstrap over texts. Multiple choice: lm-eval's `acc`, `acc_norm` and
`acc_bytes` per item on both sides, paired. Both also per `category` when the files have one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.formats import ChoiceItem, TextItem, read_multiple_choice, read_texts
from assay.evaluate.multiple_choice import score_multiple_choice
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.stats import token_perplexity_ratio
from assay.evaluate.suite import ForgettingSettings
from assay.store.atomic import sha256_file

ACCURACIES = ("acc", "acc_norm", "acc_bytes")


@check("forgetting", version=1, direction="lower_is_better", settings=ForgettingSettings)
def forgetting(ctx: EvalContext, settings: ForgettingSettings) -> CheckResult:
    """Perplexity ratio on general text and multiple-choice accuracy against the baseline."""
    result = forgetting.spec.result()  # type: ignore[attr-defined]
    texts = ctx.sample(_read(ctx, settings.text, read_texts, result), settings.max_items)
    questions = ctx.sample(_read(ctx, settings.multiple_choice, read_multiple_choice, result), settings.max_items)
    if texts:
        _perplexity(ctx, texts, result)
    if questions:
        _choices(ctx, questions, result)
    if not texts and not questions:
        result.status, result.reasons = "skipped", ["no text or multiple-choice files in the suite"]
    result.details = {"files": [{"name": n, "n": len(v)} for n, v in result.details.get("_files", {}).items()]}
    return result


def _read(ctx: EvalContext, names: list[str], reader: Any, result: CheckResult) -> list[Any]:
    items: list[Any] = []
    files = result.details.setdefault("_files", {})
    for name in names:
        path = ctx.path(name)
        found = reader(path)
        result.data[name] = sha256_file(path)
        files[name] = found
        items += found
    return items


def _perplexity(ctx: EvalContext, texts: Sequence[TextItem], result: CheckResult) -> None:
    pairs = {}
    for side, scoring in ctx.sides.sides():
        ctx.progress(f"forgetting: perplexity of {len(texts)} texts with the {side}")
        with scoring as scorer:
            scores = scorer.rolling_scores([t.text for t in texts])
        pairs[side] = np.array([[-s.logprob, s.tokens] for s in scores], dtype=float)
    result.metrics["perplexity_ratio"] = _ppl(ctx, pairs["candidate"], pairs["baseline"])
    for category, idx in _categories(texts).items():
        result.per_category.setdefault(category, {})["perplexity_ratio"] = _ppl(ctx, pairs["candidate"][idx], pairs["baseline"][idx])


def _ppl(ctx: EvalContext, cand: np.ndarray, base: np.ndarray) -> Comparison:
    """Token-weighted perplexities of both sides and their ratio with a paired interval."""
    ppl_c, ppl_b = (float(np.exp(a[:, 0].sum() / a[:, 1].sum())) for a in (cand, base))
    ratio = ctx.compare(cand, base, statistic=token_perplexity_ratio, higher_is_better=False, kind="ratio", estimate=(ppl_c, ppl_b))
    return Comparison(ppl_c, ppl_b, ratio.delta, ratio.ci_low, ratio.ci_high, ratio.n, False, "ratio")


def _choices(ctx: EvalContext, questions: Sequence[ChoiceItem], result: CheckResult) -> None:
    outcomes = {}
    for side, scoring in ctx.sides.sides():
        ctx.progress(f"forgetting: {len(questions)} multiple-choice items with the {side}")
        with scoring as scorer:
            outcomes[side] = score_multiple_choice(scorer, [q.to_dict() for q in questions])
    for name in ACCURACIES:
        cand = np.array([getattr(r, name) for r in outcomes["candidate"]])
        base = np.array([getattr(r, name) for r in outcomes["baseline"]])
        result.metrics[name] = ctx.compare(cand, base)
        for category, idx in _categories(questions).items():
            result.per_category.setdefault(category, {})[name] = ctx.compare(cand[idx], base[idx])


def _categories(items: Sequence[Any]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item.category:
            groups.setdefault(item.category, []).append(i)
    return {name: np.array(idx) for name, idx in sorted(groups.items()) if len(idx) >= 2}
