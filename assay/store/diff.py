"""Row-level differences between two dataset versions, matched by row id."""

from __future__ import annotations

import polars as pl

from assay.schema import ID, SOURCE_LINE
from assay.store.datasets import DatasetVersion

# Where a row sat in its file is not part of its value: inserting a line above must not "change" it.
_POSITIONAL = {ID, SOURCE_LINE}


def diff_versions(a: DatasetVersion, b: DatasetVersion, *, examples: int = 5) -> dict:
    """Which rows B added, removed and changed relative to A.

    Rows are matched by id; a row is changed when any shared column other than its position
    (`source_line`) differs.
    """
    left, right = a.data().collect(), b.data().collect()
    shared = [c for c in left.columns if c in right.columns and c not in _POSITIONAL]
    lh = left.select(ID, left.select(shared).hash_rows().alias("_h")) if shared else left.select(ID, pl.lit(0).alias("_h"))
    rh = right.select(ID, right.select(shared).hash_rows().alias("_h")) if shared else right.select(ID, pl.lit(0).alias("_h"))
    joined = lh.join(rh, on=ID, how="full", coalesce=True, suffix="_b")
    added = joined.filter(pl.col("_h").is_null()).get_column(ID)
    removed = joined.filter(pl.col("_h_b").is_null()).get_column(ID)
    changed_ids = joined.filter(pl.col("_h").is_not_null() & pl.col("_h_b").is_not_null() & (pl.col("_h") != pl.col("_h_b"))).get_column(ID)
    return {
        "a": a.id, "b": b.id,
        "rows_a": left.height, "rows_b": right.height,
        "added": added.len(), "removed": removed.len(), "changed": changed_ids.len(),
        "unchanged": left.height - removed.len() - changed_ids.len(),
        "columns_added": [c for c in right.columns if c not in left.columns],
        "columns_removed": [c for c in left.columns if c not in right.columns],
        "examples": {
            "added": added.head(examples).to_list(),
            "removed": removed.head(examples).to_list(),
            "changed": _changed_columns(left, right, changed_ids.head(examples).to_list(), shared),
        },
    }


def _changed_columns(left: pl.DataFrame, right: pl.DataFrame, ids: list[str], shared: list[str]) -> list[dict]:
    """For a few changed rows, which columns differ."""
    out = []
    for rid in ids:
        ra = left.filter(pl.col(ID) == rid).row(0, named=True)
        rb = right.filter(pl.col(ID) == rid).row(0, named=True)
        out.append({"id": rid, "columns": [c for c in shared if ra[c] != rb[c]]})
    return out
