"""Deterministic train/val/test split that never separates a duplicate cluster.

The unit of assignment is a group (the `dup_cluster` column when present, else the row id).
Groups are ordered by a seeded stable hash and cut at the cumulative ratios, inside each
stratum when `stratify_by` is set, so sizes match the ratios as closely as whole groups allow
and the result does not depend on input order.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.steps.base import StepContext, step
from assay.errors import ConfigError
from assay.schema import DUP_CLUSTER, ID, SPLIT

SPLITS = ("train", "val", "test")


class SplitConfig(BaseModel):
    """Options of the `split` step."""

    model_config = ConfigDict(extra="forbid")

    ratios: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.9, "val": 0.05, "test": 0.05},
        description="Share of rows per split (train, val, test); must sum to 1.",
    )
    stratify_by: str | None = Field(
        None, description="Column whose values each get the same ratios (e.g. a task or language)."
    )
    group_by: str | None = Field(
        None,
        description="Column whose equal values always share a split; default: dup_cluster if present, else id.",
    )

    @field_validator("ratios")
    @classmethod
    def _valid(cls, ratios: dict[str, float]) -> dict[str, float]:
        unknown = set(ratios) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; use {list(SPLITS)}")
        if any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be non-negative and sum to 1 (got {sum(ratios.values()):.4f})")
        return ratios


def _stable_rank(keys: list[str], seed: int) -> np.ndarray:
    """A seeded, platform-independent pseudo-random order of group keys."""
    digests = [hashlib.blake2b(f"{seed}\x1f{k}".encode(), digest_size=8).digest() for k in keys]
    return (
        np.frombuffer(b"".join(digests), dtype=">u8").astype(np.uint64) if digests else np.empty(0, np.uint64)
    )


def assign_groups(groups: pl.DataFrame, ratios: dict[str, float], seed: int) -> pl.Series:
    """Split name per group (frame of `_g` key and `_n` row count) by cumulative row share."""
    order = np.argsort(_stable_rank(groups.get_column("_g").cast(pl.String).to_list(), seed), kind="stable")
    sizes = groups.get_column("_n").to_numpy()[order]
    mid = (np.cumsum(sizes) - sizes / 2) / max(sizes.sum(), 1)  # each group's midpoint in [0, 1]
    names = [s for s in SPLITS if ratios.get(s, 0) > 0]
    cuts = np.cumsum([ratios[s] for s in names])
    labels = np.array(names)[np.minimum(np.searchsorted(cuts, mid, side="right"), len(names) - 1)]
    out = np.empty(len(order), dtype=object)
    out[order] = labels
    return pl.Series(SPLIT, out.tolist(), dtype=pl.String)


def _group_splits(keys: pl.DataFrame, stratum: str | None, cfg: SplitConfig, seed: int) -> pl.DataFrame:
    """Split per group; a group's stratum is that of its first row, so a group is never cut."""
    aggs = [pl.len().alias("_n"), *([pl.col(stratum).first().alias("_s")] if stratum else [])]
    groups = keys.group_by("_g").agg(aggs).sort("_g")
    if not stratum:
        return groups.with_columns(assign_groups(groups, cfg.ratios, seed)).select("_g", SPLIT)
    parts = [
        g.with_columns(assign_groups(g, cfg.ratios, seed))
        for _, g in groups.group_by("_s", maintain_order=True)
    ]
    return pl.concat(parts).select("_g", SPLIT)


@step("split", SplitConfig)
def split(lf: pl.LazyFrame, cfg: SplitConfig, ctx: StepContext) -> pl.LazyFrame:
    """Add `split` (train/val/test) by group, so near-copies never straddle train and test."""
    df = lf.collect()
    group = cfg.group_by or (DUP_CLUSTER if DUP_CLUSTER in df.columns else ID)
    for col in filter(None, (group, cfg.stratify_by)):
        if col not in df.columns:
            raise ConfigError(
                f"split: column `{col}` is not in the data (columns: {', '.join(df.columns)})",
                hint="set [curate.split] group_by / stratify_by to an existing column",
            )
    keys = df.select(
        pl.col(group).cast(pl.String).fill_null(pl.col(ID)).alias("_g"),
        *([pl.col(cfg.stratify_by).cast(pl.String)] if cfg.stratify_by else []),
    )
    mapping = _group_splits(keys, cfg.stratify_by, cfg, ctx.seed)
    splits = keys.select("_g").join(mapping, on="_g", how="left", maintain_order="left").get_column(SPLIT)
    return df.drop(SPLIT, strict=False).with_columns(splits).lazy()
