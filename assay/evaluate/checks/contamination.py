"""`contamination`: word n-grams the model's training rows share with each eval set the suite uses.

It runs first and needs no model. Every eval set of the other enabled checks (task files or the test
split, forgetting and bias files, shipped probe sets included) is compared with the `train` rows of
every dataset version the model trained on: an eval row overlaps when it shares a word n-gram
(13 by default, the same Unicode-word tokenisation as curation's decontamination) or its whole
normalised text with a training row. A set whose share of overlapping rows is above `max_overlap`
is contaminated, and the checks that used it are `invalid`: their numbers cannot count as a pass.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.curate import ngrams
from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.checks.rows import read_eval_file
from assay.evaluate.formats import (
    read_bbq,
    read_counterfactual,
    read_crows_pairs,
    read_multiple_choice,
    read_texts,
)
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.suite import ContaminationSettings
from assay.schema import content_columns, content_text

# suite field -> how its files become one text per eval row
_READERS = {
    "text": lambda p: [t.text for t in read_texts(p)],
    "multiple_choice": lambda p: [" ".join([q.question, *q.choices]) for q in read_multiple_choice(p)],
    "crows_pairs": lambda p: [f"{c.sent_more} {c.sent_less}" for c in read_crows_pairs(p)],
    "bbq": lambda p: [" ".join([b.context, b.question, *b.answers]) for b in read_bbq(p)],
    "counterfactual": lambda p: [t.template for t in read_counterfactual(p)],
    "files": lambda p: _texts(read_eval_file(p)),
}


@check("contamination", version=1, direction="lower_is_better", settings=ContaminationSettings)
def contamination(ctx: EvalContext, settings: ContaminationSettings) -> CheckResult:
    """Share of each eval set's rows that overlap the training rows; contaminated sets are invalid."""
    result = contamination.spec.result()  # type: ignore[attr-defined]
    train = _texts(ctx.rows("train"))
    sets = _eval_sets(ctx)
    ctx.progress(f"contamination: {len(sets)} eval set(s) against {len(train):,} training rows")
    reference = _reference(train, settings.ngram)
    rows = []
    for name, texts in sets.items():
        hits = overlapping(texts, reference, settings.ngram)
        share = len(hits) / max(len(texts), 1)
        invalid = share > settings.max_overlap
        rows.append({"name": name, "rows": len(texts), "overlapping_rows": len(hits), "share": round(share, 4), "invalid": invalid,
                     "examples": [{"eval_row": i + 1, "text": texts[i][:200]} for i in sorted(hits)[:3]]})
        if invalid:
            ctx.contaminated[name] = (f"{len(hits)} of {len(texts)} rows share a {settings.ngram}-word sequence or their "
                                      f"whole text with the training data ({share:.1%} > {settings.max_overlap:.1%})")
    worst = max((r["share"] for r in rows), default=0.0)
    result.metrics["max_overlap_share"] = Comparison(worst, None, None, None, None, len(rows), False)
    result.metrics["contaminated_sets"] = Comparison(float(len(ctx.contaminated)), None, None, None, None, len(rows), False)
    result.details = {"sets": rows, "train_rows": len(train), "ngram": settings.ngram}
    result.notes = [f"{name}: {why}" for name, why in ctx.contaminated.items()]
    return result


def _texts(frame: pl.DataFrame) -> list[str]:
    if frame.height == 0:
        return []
    return frame.select(content_text(content_columns(frame.schema))).to_series().to_list()


def _eval_sets(ctx: EvalContext) -> dict[str, list[str]]:
    """Every eval set another enabled check reads, by the name it records in its results."""
    sets: dict[str, list[str]] = {}
    for name, settings in ctx.suite.config.enabled().items():
        if name == "task" and not settings.files:
            for vid in ctx.dataset_ids():
                test = ctx.ws.datasets.get(vid).data().collect()
                sets[f"{vid}:test"] = _texts(test.filter(pl.col("split") == "test") if "split" in test.columns else test.clear())
        for field, read in _READERS.items():
            for file in getattr(settings, field, None) or []:
                sets.setdefault(file, read(ctx.path(file)))
    return sets


def _reference(texts: list[str], n: int) -> dict[str, Any]:
    tokens = ngrams.tokenize(pl.Series(texts, dtype=pl.String))
    doc, hashes = ngrams.ngram_hashes(tokens, n)
    return {"doc": doc, "hashes": hashes, "whole": {_normal(t) for t in texts}}


def overlapping(texts: list[str], reference: dict[str, Any], n: int) -> set[int]:
    """Indices of the texts that share an n-gram, or their whole normalised text, with the reference."""
    if not texts:
        return set()
    tokens = ngrams.tokenize(pl.Series(texts, dtype=pl.String))
    doc, hashes = ngrams.ngram_hashes(tokens, n)
    hits = set(ngrams.first_hits(doc, hashes, reference["doc"], reference["hashes"]))
    hits |= {i for i, t in enumerate(texts) if _normal(t) and _normal(t) in reference["whole"]}
    return {int(i) for i in hits}


def _normal(text: str) -> str:
    return " ".join(str(text).lower().split())


