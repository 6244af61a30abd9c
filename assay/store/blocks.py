"""A frame that may not fit in memory: an ordered sequence of blocks sharing one schema.

The store digests and writes versions from blocks, so a version of any size is written with
bounded memory; a plain DataFrame is one block (`FrameBlocks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl
import pyarrow.parquet as pq


class Blocks(Protocol):
    """Rows as blocks in order; every block has exactly `schema` (names, order and types)."""

    @property
    def schema(self) -> pl.Schema: ...

    @property
    def height(self) -> int: ...

    def frames(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]: ...


class FrameBlocks:
    """One DataFrame as a single block."""

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df

    @property
    def schema(self) -> pl.Schema:
        return self.df.schema

    @property
    def height(self) -> int:
        return self.df.height

    def frames(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        yield self.df if columns is None else self.df.select(columns)



def as_blocks(data: pl.DataFrame | Blocks) -> Blocks:
    return FrameBlocks(data) if isinstance(data, pl.DataFrame) else data


def union_schema(schemas: Sequence[pl.Schema]) -> pl.Schema:
    """The schema `pl.concat(..., how="diagonal_relaxed")` gives frames of these schemas: columns in
    order of first appearance, each at the supertype of its types."""
    if not schemas:
        return pl.Schema()
    return pl.concat([pl.DataFrame(schema=s) for s in schemas], how="diagonal_relaxed").schema


def align(df: pl.DataFrame, schema: pl.Schema, height: int | None = None) -> pl.DataFrame:
    """A block with exactly `schema`: missing columns as nulls, others cast to the schema's types.

    `height` is needed only when `df` has no columns (a block read without any of the columns asked).
    """
    if df.schema == schema:
        return df
    if df.width == 0:
        return pl.DataFrame(schema=schema).clear(n=height or 0)
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in df.columns]
    return df.with_columns(missing).select(pl.col(c).cast(t) for c, t in schema.items())


def values_at(blocks: Blocks, rows: np.ndarray, column: str) -> Iterator[pl.Series]:
    """The values of `column` at the sorted positions `rows` of the blocks, a block's share at a time
    (blocks after the last position are not read)."""
    if not len(rows):
        return
    start = 0
    for frame in blocks.frames([column]):
        lo, hi = np.searchsorted(rows, [start, start + frame.height])
        if hi > lo:
            yield frame.get_column(column).gather(rows[lo:hi] - start)
        start += frame.height
        if hi == len(rows):
            return


def parquet_slices(path: Path, rows_per_slice: int, exprs: Sequence[pl.Expr] | None = None) -> Iterator[pl.DataFrame]:
    """A Parquet file a slice of rows at a time (`exprs` selected from each): a slice of a scan decodes
    only the pages it needs, so memory stays that of one slice whatever the file's size."""
    scan = pl.scan_parquet(path)
    for start in range(0, pq.ParquetFile(path).metadata.num_rows, rows_per_slice):
        part = scan.slice(start, rows_per_slice)
        yield (part if exprs is None else part.select(exprs)).collect()
