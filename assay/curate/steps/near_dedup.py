"""MinHash near-deduplication as a curation step (the engine lives in `assay.curate.minhash`).

Every row gets `dup_cluster` (the id of its cluster's kept row), so the split keeps clusters
together; dropped rows record the id they duplicate and the true Jaccard similarity. Rows can
also be checked against existing versions (`against`), which the runner loads.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from assay.curate.minhash import MinHashConfig, near_duplicates, near_duplicates_against
from assay.curate.steps.base import DETAIL, DUPLICATE_OF, REASON, StepContext, step
from assay.errors import ConfigError
from assay.schema import DUP_CLUSTER, ID, content_text

EXISTING_KEY = "near_dedup.existing"  # StepContext.extra key: DataFrame(id, text) of versions to dedup against


class NearDedupConfig(MinHashConfig):
    """Options of the `near_dedup` step (MinHash LSH; see MinHashConfig for the scheme)."""

    action: Literal["drop", "flag"] = Field(
        "drop", description="drop: reject near-duplicates; flag: keep every row, only set dup_cluster."
    )
    score_column: str | None = Field(
        None, examples=["q_alpha_ratio"], description="Numeric column used when keep = \"score\" (highest kept), e.g. a q_* signal."
    )
    against: list[str] = Field(
        default_factory=list, description="Dataset versions (ids or tags) whose rows new rows must not near-duplicate."
    )


def _score(df: pl.DataFrame, cfg: NearDedupConfig) -> np.ndarray | None:
    if cfg.keep != "score":
        return None
    if not cfg.score_column or cfg.score_column not in df.columns:
        raise ConfigError(f"near_dedup: keep = \"score\" needs score_column naming a numeric column (got {cfg.score_column!r})",
                          hint="set [curate.near_dedup] score_column, e.g. \"q_alpha_ratio\"")
    return df.get_column(cfg.score_column).cast(pl.Float64).fill_null(float("-inf")).to_numpy()


def _decide(dec: pl.DataFrame, cfg: NearDedupConfig) -> pl.DataFrame:
    """Decision columns from `kept_id` (cluster representative id) and `reason` (null when kept)."""
    dropped = pl.col("reason").is_not_null()
    return dec.select(
        pl.col("kept_id").alias(DUP_CLUSTER),
        (pl.col("reason") if cfg.action == "drop" else pl.lit(None, dtype=pl.String)).alias(REASON),
        pl.when(dropped).then(pl.col("kept_id")).alias(DUPLICATE_OF),
        pl.when(dropped).then(pl.format("jaccard {} with {}", pl.col("similarity").round(3), pl.col("kept_id"))).alias(DETAIL),
    )


def _within(df: pl.DataFrame, texts: pl.Series, cfg: NearDedupConfig) -> pl.DataFrame:
    d = near_duplicates(texts, cfg, score=_score(df, cfg))
    kept_id = df.get_column(ID).gather(d.get_column("cluster"))
    return _decide(d.with_columns(
        kept_id=kept_id,
        reason=pl.when(~pl.col("keep")).then(pl.lit("near_duplicate")),
    ), cfg)


def _against(df: pl.DataFrame, texts: pl.Series, existing: pl.DataFrame, cfg: NearDedupConfig) -> pl.DataFrame:
    d = near_duplicates_against(texts, existing.get_column("text"), cfg, score=_score(df, cfg))
    old = existing.get_column(ID).gather(d.get_column("duplicate_of_existing").fill_null(0))
    new = df.get_column(ID).gather(d.get_column("duplicate_of").fill_null(0))
    return _decide(d.with_columns(
        kept_id=pl.when(pl.col("duplicate_of_existing").is_not_null()).then(old)
        .when(pl.col("duplicate_of").is_not_null()).then(new).otherwise(df.get_column(ID)),
        reason=pl.when(pl.col("duplicate_of_existing").is_not_null()).then(pl.lit("near_duplicate_of_existing"))
        .when(pl.col("duplicate_of").is_not_null()).then(pl.lit("near_duplicate")),
    ), cfg)


@step("near_dedup", NearDedupConfig, is_filter=True)
def near_dedup(lf: pl.LazyFrame, cfg: NearDedupConfig, ctx: StepContext) -> pl.LazyFrame:
    """Reject (or flag) MinHash near-duplicates, keeping one row per cluster by the keep rule."""
    df = lf.collect()
    texts = df.select(content_text(ctx.content_columns)).to_series()
    existing: pl.DataFrame | None = ctx.extra.get(EXISTING_KEY)
    if df.height == 0:
        decisions = pl.DataFrame(schema={DUP_CLUSTER: pl.String, REASON: pl.String, DUPLICATE_OF: pl.String, DETAIL: pl.String})
    elif existing is not None and existing.height:
        decisions = _against(df, texts, existing, cfg)
    else:
        decisions = _within(df, texts, cfg)
    return pl.concat([df.drop(DUP_CLUSTER, strict=False), decisions], how="horizontal").lazy()
