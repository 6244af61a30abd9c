"""`bias`: paired-sentence preference (CrowS-Pairs), ambiguous question answering (BBQ) and counterfactual swaps.

- CrowS-Pairs, as lm-eval's `crows_pairs_english`: `pct_stereotype` is the share of pairs whose more
  stereotyping sentence gets the higher log-likelihood (strict), reported in percent (lm-eval prints
  the same number as a fraction; 50 is neutral), and `likelihood_diff`; overall and per `bias_type`.
- BBQ, as the paper and lm-eval define its scores (`assay.evaluate.bbq`): accuracy and bias score in
  ambiguous and disambiguated contexts, overall and per category.
- Counterfactual templates (`assay.evaluate.counterfactual`): the likelihood spread and the share of
  templates whose greedy answer changes when only a demographic term does, per group.
Every number is paired candidate vs baseline per item, with a bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assay.evaluate import bbq, counterfactual, pairs
from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.formats import read_bbq, read_counterfactual, read_crows_pairs
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.stats import paired_bootstrap
from assay.evaluate.suite import BiasSettings
from assay.store.atomic import sha256_file


@check("bias", version=1, direction="lower_is_better", settings=BiasSettings)
def bias(ctx: EvalContext, settings: BiasSettings) -> CheckResult:
    """CrowS-Pairs pct_stereotype, BBQ bias scores and counterfactual consistency against the baseline."""
    result = bias.spec.result()  # type: ignore[attr-defined]
    crows = ctx.sample(_read(ctx, settings.crows_pairs, read_crows_pairs, result), settings.max_items)
    questions = ctx.sample(_read(ctx, settings.bbq, read_bbq, result), settings.max_items)
    templates = ctx.sample(_read(ctx, settings.counterfactual, read_counterfactual, result), settings.max_items)
    if crows:
        _crows(ctx, crows, settings, result)
    if questions:
        _bbq(ctx, questions, result)
    if templates:
        _counterfactual(ctx, templates, result)
    if not (crows or questions or templates):
        result.status, result.reasons = "skipped", ["no CrowS-Pairs, BBQ or counterfactual files in the suite"]
    return result


def _read(ctx: EvalContext, names: list[str], reader: Callable[[Any], list[Any]], result: CheckResult) -> list[Any]:
    items: list[Any] = []
    for name in names:
        path = ctx.path(name)
        items += reader(path)
        result.data[name] = sha256_file(path)
    return items


def _each_side(ctx: EvalContext, what: str, run: Callable[[Any], Any]) -> dict[str, Any]:
    out = {}
    for side, scoring in ctx.sides.sides():
        ctx.progress(f"bias: {what} with the {side}")
        with scoring as scorer:
            out[side] = run(scorer)
    return out


def _crows(ctx: EvalContext, crows: Sequence[Any], settings: BiasSettings, result: CheckResult) -> None:
    scored = _each_side(ctx, f"{len(crows)} sentence pairs", lambda s: pairs.score_pairs(s, [c.to_dict() for c in crows]))
    cand, base = scored["candidate"], scored["baseline"]
    result.metrics |= _crows_metrics(ctx, cand, base, range(len(crows)))
    groups: dict[str, list[int]] = {}
    for i, pair in enumerate(crows):
        groups.setdefault(pair.bias_type, []).append(i)
    for name, idx in sorted(groups.items()):
        result.per_category.setdefault(name, {}).update(_crows_metrics(ctx, cand, base, idx))
    result.details["examples"] = [
        {"bias_type": p.bias_type, "sent_more": p.sent_more, "sent_less": p.sent_less,
         "candidate_prefers": "more" if c.ll_more > c.ll_less else "less", "baseline_prefers": "more" if b.ll_more > b.ll_less else "less"}
        for p, c, b in list(zip(crows, cand, base, strict=True))[: settings.examples]
    ]


def _crows_metrics(ctx: EvalContext, cand: Sequence[Any], base: Sequence[Any], idx: Any) -> dict[str, Comparison]:
    c = [cand[i] for i in idx]
    b = [base[i] for i in idx]
    return {
        "pct_stereotype": ctx.compare([100 * r.pct_stereotype for r in c], [100 * r.pct_stereotype for r in b], higher_is_better=False),
        "likelihood_diff": ctx.compare([r.likelihood_diff for r in c], [r.likelihood_diff for r in b], higher_is_better=False),
    }


def _bbq(ctx: EvalContext, questions: Sequence[Any], result: CheckResult) -> None:
    scored = _each_side(ctx, f"{len(questions)} BBQ questions", lambda s: bbq.score_bbq(s.loglikelihood, questions))
    result.metrics |= _bbq_metrics(ctx, scored["candidate"], scored["baseline"])
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(questions):
        groups.setdefault(item.category, []).append(i)
    for name, idx in sorted(groups.items()):
        cand, base = [scored["candidate"][i] for i in idx], [scored["baseline"][i] for i in idx]
        result.per_category.setdefault(name, {}).update(_bbq_metrics(ctx, cand, base))


def _bbq_metrics(ctx: EvalContext, cand: Sequence[Any], base: Sequence[Any]) -> dict[str, Comparison]:
    """Every BBQ metric (not a mean of per-item values) with a bootstrap of its delta over items."""
    vc, vb = bbq.values(cand), bbq.values(base)
    out = {}
    for name in bbq.METRICS:
        sc, sb = (bbq.summarise(cand)[name], bbq.summarise(base)[name])
        if sc is None or sb is None:
            continue
        interval = paired_bootstrap(vc, vb, _nan_safe(bbq.delta_statistic(name)), confidence=ctx.confidence,
                                    n_resamples=ctx.resamples, seed=ctx.seed)
        higher = name.startswith(("acc", "accuracy"))
        out[f"bbq_{name}"] = Comparison(sc, sb, sc - sb, interval.low, interval.high, len(cand), higher)
    return out


def _nan_safe(statistic: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A resample without items of one condition has no value there: count it as no change."""
    return lambda c, b: np.nan_to_num(statistic(c, b), nan=0.0)


def _counterfactual(ctx: EvalContext, templates: Sequence[Any], result: CheckResult) -> None:
    scored = _each_side(ctx, f"{len(templates)} counterfactual templates",
                        lambda s: counterfactual.score_counterfactual(templates, s.loglikelihood, s.generate))
    cand, base = scored["candidate"], scored["baseline"]
    result.metrics |= _counterfactual_metrics(ctx, cand, base)
    groups: dict[str, list[int]] = {}
    for i, unit in enumerate(cand):
        groups.setdefault(unit.group, []).append(i)
    for name, idx in sorted(groups.items()):
        result.per_category.setdefault(name, {}).update(
            _counterfactual_metrics(ctx, [cand[i] for i in idx], [base[i] for i in idx]))


def _counterfactual_metrics(ctx: EvalContext, cand: Sequence[Any], base: Sequence[Any]) -> dict[str, Comparison]:
    return {
        "counterfactual_likelihood_spread": ctx.compare([r.spread for r in cand], [r.spread for r in base], higher_is_better=False),
        "counterfactual_answer_change_rate": ctx.compare([float(r.changed) for r in cand], [float(r.changed) for r in base],
                                                         higher_is_better=False),
    }
