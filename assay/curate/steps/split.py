"""Deterministic train/val/test split that never separates a duplicate cluster.

The unit of assignment is a group (the `dup_cluster` column when present, else the row id).
Groups are ordered by a seeded stable hash and cut at the cumulative ratios, inside each
stratum when `stratify_by` is set, so sizes match the ratios as closely as whole groups allow
and the result does not depend on input order.

Rows that arrive with a split (readers fill `split` from a DatasetDict's split names, a
`split` column or a file per split) keep it: only groups whose first row has no split, or
`train`, are cut by the ratios, and a val or test split the input supplies gets none of them,
so a held-out test set stays exactly as given. A later copy in a group that starts in another
split moves to the group's split, and `split_moved` says why.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.steps.base import CorpusInput, CorpusStep, StepContext, corpus_step
from assay.errors import ConfigError
from assay.schema import DUP_CLUSTER, ID, SPLIT

SPLITS = ("train", "val", "test")
_SPLIT_CODES = pl.Enum(SPLITS)
HELD_OUT = ("val", "test")  # input splits that are kept apart from the rows split by the ratios
SPLIT_MOVED = "split_moved"


class SplitConfig(BaseModel):
    """Options of the `split` step."""

    model_config = ConfigDict(extra="forbid")

    ratios: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.9, "val": 0.05, "test": 0.05},
        description="Share of rows per split (train, val, test); must sum to 1.",
    )
    stratify_by: str | None = Field(
        None, examples=["topic"], description="Column whose values each get the same ratios (e.g. a task or language)."
    )
    group_by: str | None = Field(
        None,
        examples=["conversation_id"],
        description="Column whose equal values always share a split; default: dup_cluster if present, else id.",
    )
    # Left out of dumps at its default, so the config hash (and version ids) of earlier runs hold.
    input_splits: Literal["keep", "resplit"] = Field(
        "keep",
        exclude_if=lambda v: v == "keep",
        description=(
            "keep: rows whose input names a split (a DatasetDict's splits, a `split` column, train.jsonl + "
            "test.jsonl) keep it; only the other rows are split by the ratios, and none of them go to a val "
            "or test split the input supplies. resplit: ignore input splits and split every row by the ratios."
        ),
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


# Group keys hashed per batch: a Python string and a digest object per key are ~100 bytes, so the
# keys of a 10M-row corpus taken at once would hold about a gigabyte of them.
_RANK_BATCH = 100_000


def _stable_rank(keys: pl.Series, seed: int) -> np.ndarray:
    """A seeded, platform-independent pseudo-random order of group keys (blake2b of seed and key)."""
    out = np.empty(len(keys), np.uint64)
    for start in range(0, len(keys), _RANK_BATCH):
        batch = keys.slice(start, _RANK_BATCH).to_list()
        digests = b"".join(hashlib.blake2b(f"{seed}\x1f{k}".encode(), digest_size=8).digest() for k in batch)
        out[start : start + len(batch)] = np.frombuffer(digests, dtype=">u8")
    return out


def assign_groups(groups: pl.DataFrame, ratios: dict[str, float], seed: int) -> pl.Series:
    """Split name per group (frame of `_g` key and `_n` row count) by cumulative row share."""
    order = np.argsort(_stable_rank(groups.get_column("_g").cast(pl.String), seed), kind="stable")
    sizes = groups.get_column("_n").to_numpy()[order]
    mid = (np.cumsum(sizes) - sizes / 2) / max(sizes.sum(), 1)  # each group's midpoint in [0, 1]
    names = [s for s in SPLITS if ratios.get(s, 0) > 0]
    cuts = np.cumsum([ratios[s] for s in names])
    codes = np.empty(len(order), np.int64)
    codes[order] = np.minimum(np.searchsorted(cuts, mid, side="right"), len(names) - 1)
    return pl.Series(SPLIT, names, dtype=pl.String).gather(codes)


def _group_splits(
    keys: pl.DataFrame, stratum: str | None, ratios: dict[str, float], seed: int
) -> pl.DataFrame:
    """Split per group; a group's stratum is that of its first row, so a group is never cut."""
    aggs = [pl.len().alias("_n"), *([pl.col(stratum).first().alias("_s")] if stratum else [])]
    groups = keys.group_by("_g").agg(aggs).sort("_g")
    if not stratum:
        return groups.with_columns(assign_groups(groups, ratios, seed)).select("_g", SPLIT)
    parts = [
        g.with_columns(assign_groups(g, ratios, seed)) for _, g in groups.group_by("_s", maintain_order=True)
    ]
    return pl.concat(parts).select("_g", SPLIT)


def pool_ratios(ratios: dict[str, float], supplied: set[str]) -> dict[str, float]:
    """The ratios for rows without a held-out input split: supplied splits get none, the rest renormalised.

    >>> pool_ratios({"train": 0.9, "val": 0.05, "test": 0.05}, {"test"})  # train ~0.947, val ~0.053
    """
    kept = {s: r for s, r in ratios.items() if s not in supplied}
    total = sum(kept.values())
    return {s: r / total for s, r in kept.items()} if total > 0 else ratios


def _input_splits(keys: pl.DataFrame) -> pl.Series | None:
    """The rows' input splits when they are kept and any row has one; unknown names are an error."""
    if "_in" not in keys.columns:
        return None
    given = keys.get_column("_in")
    unknown = sorted(set(given.drop_nulls().unique().to_list()) - set(SPLITS))
    if unknown:
        raise ConfigError(
            f"split: column `{SPLIT}` holds {', '.join(unknown)}, not only {', '.join(SPLITS)}",
            hint='rename those rows\' split, or set [curate.split] input_splits = "resplit" to split every row anew',
        )
    return given if given.null_count() < given.len() else None


def _keep_input_splits(
    keys: pl.DataFrame, given: pl.Series, cfg: SplitConfig, what: str, seed: int
) -> pl.DataFrame:
    """`split` per row, and `split_moved` (null when not moved), keeping held-out input splits."""
    rows = keys.with_columns(given.alias("_in"))
    first = rows.group_by("_g", maintain_order=True).agg(pl.col("_in").first().alias("_first"))
    first = first.with_columns(
        pl.when(pl.col("_first").is_in(HELD_OUT)).then(pl.col("_first")).alias("_fixed")
    )
    rows = rows.join(first, on="_g", how="left", maintain_order="left")
    pool = rows.filter(pl.col("_fixed").is_null()).drop("_in", "_first", "_fixed")
    ratios = pool_ratios(cfg.ratios, set(given.drop_nulls().to_list()) & set(HELD_OUT))
    assigned = _group_splits(pool, cfg.stratify_by, ratios, seed) if pool.height else None
    if assigned is None:
        assigned = pl.DataFrame(schema={"_g": pl.String, SPLIT: pl.String})
    rows = rows.join(assigned, on="_g", how="left", maintain_order="left")
    return rows.select(pl.coalesce("_fixed", SPLIT).alias(SPLIT), _moved_note(what))


def _moved_note(what: str) -> pl.Expr:
    """Why a row left its input split: it is a later copy in a group that starts in another split."""
    split = pl.coalesce("_fixed", SPLIT)
    row_class = pl.when(pl.col("_in").is_in(HELD_OUT)).then(pl.col("_in"))  # null: split by the ratios
    moved = pl.col("_in").is_not_null() & row_class.ne_missing(pl.col("_fixed"))
    start = pl.col("_first").fill_null("a row without a split")
    note = pl.format("{} → {}: {} {} starts in {}", pl.col("_in"), split, pl.lit(what), pl.col("_g"), start)
    return pl.when(moved).then(note).alias(SPLIT_MOVED)


def _check_columns(df: pl.DataFrame, columns: list[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise ConfigError(
                f"split: column `{col}` is not in the data (columns: {', '.join(df.columns)})",
                hint="set [curate.split] group_by / stratify_by to an existing column",
            )


def _group_column(schema: pl.Schema, cfg: SplitConfig) -> str:
    return cfg.group_by or (DUP_CLUSTER if DUP_CLUSTER in schema else ID)


def _keys(df: pl.DataFrame, cfg: SplitConfig, ctx: StepContext) -> pl.DataFrame:
    """Per row: its group key, its stratum and (when input splits are kept) its input split."""
    group = _group_column(df.schema, cfg)
    _check_columns(df, [c for c in (group, cfg.stratify_by) if c])
    keep_given = cfg.input_splits == "keep" and SPLIT in df.columns
    return df.select(
        pl.col(group).cast(pl.String).fill_null(pl.col(ID)).alias("_g"),
        *([pl.col(cfg.stratify_by).cast(pl.String)] if cfg.stratify_by else []),
        *([pl.col(SPLIT).cast(pl.String).alias("_in")] if keep_given else []),
    )


def _decide(data: CorpusInput, cfg: SplitConfig, ctx: StepContext) -> pl.DataFrame:
    """`split` per row, plus `split_moved` when a row left its input split."""
    keys = data.frame()
    given = _input_splits(keys)
    keys = keys.drop("_in", strict=False)
    if given is None:
        mapping = _group_splits(keys, cfg.stratify_by, cfg.ratios, ctx.seed)
        split = keys.select("_g").join(mapping, on="_g", how="left", maintain_order="left").get_column(SPLIT)
        return split.cast(_SPLIT_CODES).to_frame()  # held for a whole pass: 4 bytes a row, not 16
    group = _group_column(data.schema, cfg)
    what = "near-duplicate cluster" if group == DUP_CLUSTER else f"group `{group}`"
    out = _keep_input_splits(keys, given, cfg, what, ctx.seed)
    return out if out.get_column(SPLIT_MOVED).is_not_null().any() else out.drop(SPLIT_MOVED)


def _merge(df: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    return df.drop(SPLIT, strict=False).with_columns(decisions).with_columns(pl.col(SPLIT).cast(pl.String))


split = corpus_step(
    "split", SplitConfig, CorpusStep(_keys, _decide, _merge),
    "Add `split` (train/val/test) by group, so near-copies never straddle train and test.",
)
