"""Exact deduplication on normalised content: the first occurrence stays, later copies are rejected."""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.steps.base import (
    DUPLICATE_OF,
    REASON,
    CorpusInput,
    CorpusStep,
    StepContext,
    corpus_step,
    ids_at,
)
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
    """Per row, the id of the earlier row it copies (null for a first occurrence): one nullable column,
    with ids read only for the rows copied."""
    keys = data.frame(["_k1", "_k2"]).with_row_index("_row")
    first = keys.select(pl.col("_row").first().over("_k1", "_k2")).to_series().to_numpy().astype(np.int64)
    return pl.DataFrame({"_ed_of": ids_at(data.keys, first, first != np.arange(len(first)))})


def _merge(df: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    copy = pl.col("_ed_of")
    return pl.concat([df, decisions], how="horizontal").with_columns(
        pl.when(copy.is_not_null()).then(pl.lit("exact_duplicate")).alias(REASON), copy.alias(DUPLICATE_OF)
    ).drop("_ed_of")


exact_dedup = corpus_step(
    "exact_dedup", ExactDedupConfig, CorpusStep(_keys, _decide, _merge),
    "Reject rows whose normalised content equals an earlier row's; record which row they copy.", is_filter=True,
)
