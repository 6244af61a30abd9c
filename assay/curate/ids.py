"""Stable row ids: a hash of the source, the lightly normalised content and its occurrence.

The occurrence number (how many identical rows came before in the same source) keeps ids
unique when a file repeats a row, and unlike a line number it survives inserting rows above.
The light normalisation is fixed (not configurable) so ids do not move when step options do.
"""

from __future__ import annotations

import hashlib

import polars as pl

from assay.schema import ID, SOURCE, content_columns, content_text

ID_HEX = 16


def _light(expr: pl.Expr) -> pl.Expr:
    return expr.str.normalize("NFC").str.replace_all(r"\s+", " ").str.strip_chars()


def assign_ids(df: pl.DataFrame) -> pl.DataFrame:
    """Add (or replace) the `id` column as the first column."""
    keys = df.select(
        pl.col(SOURCE).fill_null(""),
        _light(content_text(content_columns(df.schema))).alias("_k"),
    ).with_columns(pl.int_range(pl.len()).over(SOURCE, "_k").alias("_n"))
    ids = [
        hashlib.blake2b(f"{s}\x1f{k}\x1f{n}".encode(), digest_size=ID_HEX // 2).hexdigest()
        for s, k, n in keys.iter_rows()
    ]
    return df.drop(ID, strict=False).insert_column(0, pl.Series(ID, ids, dtype=pl.String))
