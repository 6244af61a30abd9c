"""Exact deduplication on normalised content: the first occurrence stays, later copies are rejected."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.steps.base import DUPLICATE_OF, REASON, CorpusInput, CorpusStep, StepContext, corpus_step
from assay.schema import ID, content_text


class ExactDedupConfig(BaseModel):
    """Options of the `exact_dedup` step."""

    model_config = ConfigDict(extra="forbid")

    casefold: bool = Field(False, description="Compare content case-insensitively.")
    ignore_whitespace: bool = Field(
        False, description="Compare content with all whitespace removed (after normalisation)."
    )


def dedup_key(ctx: StepContext, cfg: ExactDedupConfig) -> pl.Expr:
    key = content_text(ctx.content_columns)
    if cfg.casefold:
        key = key.str.to_lowercase()
    if cfg.ignore_whitespace:
        key = key.str.replace_all(r"\s+", "")
    return key


# Two seeds give a 128-bit content key: equal keys stand for equal content (a collision between two
# different texts is not a practical concern), so only 16 bytes per row are held, not the text.
_SEEDS = (0x5DEECE66D, 0x2545F4914F6CDD1D)


def _keys(df: pl.DataFrame, cfg: ExactDedupConfig, ctx: StepContext) -> pl.DataFrame:
    key = dedup_key(ctx, cfg)
    return df.select(pl.col(ID), key.hash(_SEEDS[0]).alias("_k1"), key.hash(_SEEDS[1]).alias("_k2"))


def _decide(data: CorpusInput, cfg: ExactDedupConfig, ctx: StepContext) -> pl.DataFrame:
    first = pl.struct("_k1", "_k2").is_first_distinct()
    return data.frame().select(
        pl.when(first).then(None).otherwise(pl.lit("exact_duplicate")).alias(REASON),
        pl.when(first).then(None).otherwise(pl.col(ID).first().over("_k1", "_k2")).alias(DUPLICATE_OF),
    )


def _merge(df: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(decisions)


exact_dedup = corpus_step(
    "exact_dedup", ExactDedupConfig, CorpusStep(_keys, _decide, _merge),
    "Reject rows whose normalised content equals an earlier row's; record which row they copy.", is_filter=True,
)
