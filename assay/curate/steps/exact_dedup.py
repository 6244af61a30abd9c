"""Exact deduplication on normalised content: the first occurrence stays, later copies are rejected."""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.steps.base import DUPLICATE_OF, REASON, StepContext, step
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


@step("exact_dedup", ExactDedupConfig, is_filter=True)
def exact_dedup(lf: pl.LazyFrame, cfg: ExactDedupConfig, ctx: StepContext) -> pl.LazyFrame:
    """Reject rows whose normalised content equals an earlier row's; record which row they copy."""
    key = dedup_key(ctx, cfg)
    first_id = pl.col(ID).first().over(key)
    return lf.with_columns(
        pl.when(key.is_first_distinct()).then(None).otherwise(pl.lit("exact_duplicate")).alias(REASON),
        pl.when(key.is_first_distinct()).then(None).otherwise(first_id).alias(DUPLICATE_OF),
    )
