"""`task`: answer held-out prompts greedily and score the answers against the references.

The prompts come from the suite's files or, by default, the `test` split of the model's dataset
versions; both sides answer the same prompts, so every metric is compared per example (paired
bootstrap; corpus BLEU is recomputed on each resample).
"""

from __future__ import annotations

from typing import Any

from assay.errors import InputError
from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.checks.rows import Item, items, prompt_text, read_eval_file
from assay.evaluate.extract import extract_answers
from assay.evaluate.metrics import compare, get_metric, score
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.scoring import GenerationSettings
from assay.evaluate.suite import TaskSettings


@check("task", version=1, direction="higher_is_better", settings=TaskSettings)
def task(ctx: EvalContext, settings: TaskSettings) -> CheckResult:
    """Task metrics (ROUGE, BLEU, exact match, token F1, accuracy) on held-out prompts."""
    examples, data = _examples(ctx, settings)
    contexts = [prompt_text(ctx.tokenizer, item) for item in examples]
    generation = GenerationSettings(until=tuple(settings.stop), max_new_tokens=settings.max_new_tokens)
    answers: dict[str, list[str]] = {}
    for side, scoring in ctx.sides.sides():
        ctx.progress(f"task: {len(contexts)} answers from the {side}")
        with scoring as scorer:
            answers[side] = scorer.generate([(c, generation) for c in contexts])
    references = extract_answers([item.reference for item in examples], settings.reference_extract).answers
    extracted = {side: extract_answers(texts, settings.extract) for side, texts in answers.items()}
    result = task.spec.result(data=data)  # type: ignore[attr-defined]
    result.metrics = _compare(ctx, settings.metrics, extracted["candidate"].answers, extracted["baseline"].answers, references)
    result.per_category = _per_category(ctx, settings, examples, extracted, references)
    result.details = {
        "samples": _samples(examples, answers, references, settings.samples),
        "extraction": {"kind": settings.extract.kind, "missing_candidate": extracted["candidate"].missing,
                       "missing_baseline": extracted["baseline"].missing},
        "examples": len(examples),
    }
    return result


def _examples(ctx: EvalContext, settings: TaskSettings) -> tuple[list[Item], dict[str, str]]:
    """The items to answer, and the eval data they came from (name → sha256, for the report)."""
    from assay.store.atomic import sha256_file

    if settings.files:
        found: list[Item] = []
        data = {}
        for name in settings.files:
            path = ctx.path(name)
            found += items(read_eval_file(path), category_column=settings.category_column)
            data[name] = sha256_file(path)
        chosen = found[: settings.max_examples]
    else:
        test = ctx.rows("test")
        chosen = items(test, category_column=settings.category_column, limit=settings.max_examples)
        data = {f"{vid}:test": vid for vid in ctx.dataset_ids()}
    if not chosen:
        where = ", ".join(settings.files) or f"the test split of {', '.join(ctx.dataset_ids())}"
        raise InputError(f"task check: no prompt/answer rows in {where}",
                         hint="curate with a test split (curate.split.ratios), or name eval files in the suite's [checks.task] files")
    return chosen, data


def _compare(ctx: EvalContext, names: list[str], cand: list[str], base: list[str], refs: list[str]) -> dict[str, Comparison]:
    out = {}
    for name in names:
        spec = get_metric(name)
        c, b = score(name, cand, refs), score(name, base, refs)
        interval = compare(c, b, confidence=ctx.confidence, n_resamples=ctx.resamples, seed=ctx.seed)
        out[name] = Comparison(c.corpus, b.corpus, interval.estimate, interval.low, interval.high, c.n, spec.higher_is_better)
    return out


def _per_category(ctx: EvalContext, settings: TaskSettings, examples: list[Item], extracted: dict[str, Any],
                  refs: list[str]) -> dict[str, dict[str, Comparison]]:
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(examples):
        if item.category is not None:
            groups.setdefault(item.category, []).append(i)
    return {
        name: _compare(ctx, settings.metrics, [extracted["candidate"].answers[i] for i in idx],
                       [extracted["baseline"].answers[i] for i in idx], [refs[i] for i in idx])
        for name, idx in sorted(groups.items()) if len(idx) >= 2
    }


def _samples(examples: list[Item], answers: dict[str, list[str]], refs: list[str], n: int) -> list[dict[str, Any]]:
    return [
        {"id": item.id, "prompt": item.messages[-1]["content"], "reference": item.reference, "reference_answer": refs[i],
         "candidate": answers["candidate"][i], "baseline": answers["baseline"][i], "source": item.source,
         "source_line": item.source_line}
        for i, item in enumerate(examples[:n])
    ]
