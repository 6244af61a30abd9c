"""Decontamination: training rows that share a long word n-gram with any eval row.

Words are Unicode words (`assay.curate.words.word_hashes`), the tokenisation near-dedup uses, so
case and punctuation never hide an overlap.

The runner loads the eval sets (files or versions) and hands them over in the step context,
so the step itself stays a pure function of frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assay.curate.ngrams import Tokens, first_hits, ngram_hashes, tokenize
from assay.curate.steps.base import DETAIL, REASON, StepContext, step
from assay.schema import content_text

EVALS_KEY = "decontaminate.evals"  # StepContext.extra key: DataFrame(eval_set, eval_row, text)
HIT = "decontam_hit"
_BATCH = 50_000


class DecontaminateConfig(BaseModel):
    """Options of the `decontaminate` step."""

    model_config = ConfigDict(extra="forbid")

    evals: list[str] = Field(
        default_factory=list,
        description="Eval sets to protect: files, folders, globs (relative to the working directory) or dataset version ids/tags. Empty: the step does nothing.",
    )
    ngram: int = Field(13, ge=3, le=64, description="Shared word n-gram length that counts as contamination.")
    min_ngram: int = Field(
        8,
        ge=3,
        description="Eval rows shorter than `ngram` words but at least this long count when they appear whole.",
    )
    action: Literal["drop", "flag"] = Field(
        "drop", description="drop: reject hits; flag: keep them with `decontam_hit` set."
    )

    @model_validator(mode="after")
    def _order(self) -> DecontaminateConfig:
        if self.min_ngram > self.ngram:
            raise ValueError(f"min_ngram ({self.min_ngram}) must not exceed ngram ({self.ngram})")
        return self


def _lengths_to_check(ref: Tokens, cfg: DecontaminateConfig) -> list[int]:
    short = ref.lengths[(ref.lengths >= cfg.min_ngram) & (ref.lengths < cfg.ngram)]
    return sorted({cfg.ngram, *short.tolist()})


def _reference(ref: Tokens, k: int, cfg: DecontaminateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Eval k-grams: all n-grams for k == ngram; whole rows of exactly k words for shorter k."""
    if k == cfg.ngram:
        return ngram_hashes(ref, k)
    return ngram_hashes(ref, k, only_docs=np.flatnonzero(ref.lengths == k))


def find_hits(texts: pl.Series, evals: pl.DataFrame, cfg: DecontaminateConfig) -> list[int | None]:
    """For each text, the index of the first eval row it overlaps (None when clean)."""
    ref = tokenize(evals.get_column("text"))
    refs = {k: _reference(ref, k, cfg) for k in _lengths_to_check(ref, cfg)}
    out: list[int | None] = [None] * texts.len()
    for start in range(0, texts.len(), _BATCH):
        tok = tokenize(texts.slice(start, _BATCH))
        for k, (ref_doc, ref_hash) in refs.items():
            q_doc, q_hash = ngram_hashes(tok, k)
            for doc, eval_idx in first_hits(q_doc, q_hash, ref_doc, ref_hash).items():
                if out[start + doc] is None:
                    out[start + doc] = eval_idx
    return out


@step("decontaminate", DecontaminateConfig, is_filter=True, rewrites_content=False)
def decontaminate(lf: pl.LazyFrame, cfg: DecontaminateConfig, ctx: StepContext) -> pl.LazyFrame:
    """Flag or drop rows sharing a `ngram`-word sequence with an eval row; name the eval set and row."""
    evals: pl.DataFrame | None = ctx.extra.get(EVALS_KEY)
    if evals is None or evals.height == 0:
        return lf
    df = lf.collect()
    texts = df.select(content_text(ctx.content_columns)).to_series()
    hits = find_hits(texts, evals, cfg)
    labels = [None if h is None else f"{evals['eval_set'][h]}:{evals['eval_row'][h]}" for h in hits]
    hit = pl.Series(HIT, labels, dtype=pl.String)
    reason = pl.when(hit.is_not_null()).then(pl.lit("eval_overlap")) if cfg.action == "drop" else pl.lit(None)
    return (
        df.lazy()
        .with_columns(hit)
        .with_columns(
            reason.cast(pl.String).alias(REASON),
            pl.when(pl.col(HIT).is_not_null())
            .then(
                pl.format(
                    "shares a {}-word sequence (or a whole short eval row) with {}",
                    pl.lit(cfg.ngram),
                    pl.col(HIT),
                )
            )
            .alias(DETAIL),
        )
    )
