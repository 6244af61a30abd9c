"""Stable content digests of frames, independent of Parquet bytes and Polars versions.

Version ids are derived from content, so the digest must only change when values change:
we hash Arrow buffers of a canonical form (large strings, int64/float64, JSON for nested
values) column by column, in sorted column order.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import pyarrow as pa
import xxhash

from assay.store.arrowtext import utf8_buffers
from assay.store.blocks import Blocks, as_blocks

_PRIMITIVE = (pl.Boolean, pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _canonical(series: pl.Series) -> pl.Series:
    """Map a column onto a small set of types whose Arrow layout is fixed."""
    dtype = series.dtype
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return series.cast(pl.String)
    if isinstance(dtype, _PRIMITIVE):
        return series.cast(pl.Int64)
    if dtype.is_float():
        return series.cast(pl.Float64)
    if dtype == pl.Null:
        return series.cast(pl.String)
    if dtype.is_temporal():
        return series.cast(pl.String)
    # Nested, binary, decimal and anything else: a JSON text per row.
    frame = series.to_frame("v")
    return frame.select(pl.struct("v").struct.json_encode()).to_series().rename(series.name)


def _arrow(series: pl.Series, canonical: pl.Series | None = None) -> pa.Array:
    arr = (_canonical(series) if canonical is None else canonical).to_arrow()
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if pa.types.is_string(arr.type) or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


def _hash_column(h: xxhash.xxh3_128, blocks: Blocks, name: str) -> None:
    """Hash one column as if it were one Arrow array: validity (or b"no-nulls"), then its values,
    or for strings its offsets then its bytes. Two passes over the blocks: the bytes come last."""
    valid, values, nulls, end, kind = [], [], 0, 0, None
    for block in blocks.frames([name]):
        canonical = _canonical(block.get_column(name))
        nulls += canonical.null_count()
        # Validity and values through Polars, not pyarrow's to_numpy (which imports pandas, ~0.5 s).
        valid.append(canonical.is_not_null().to_numpy().astype(np.uint8))
        if canonical.dtype == pl.String:  # the offsets of its large_string array, from byte lengths (no copy of the text)
            kind = pa.large_string()
            offsets = np.cumsum(canonical.str.len_bytes().fill_null(0).to_numpy().astype(np.int64))
            values.append(offsets + end)
            end += int(offsets[-1]) if len(offsets) else 0
        else:
            kind = _arrow(canonical, canonical).type
            values.append(np.ascontiguousarray(canonical.fill_null(0).to_numpy()))
    h.update(f"\x00{name}\x00{kind}\x00".encode())
    h.update(b"".join(v.tobytes() for v in valid) if nulls else b"no-nulls")
    if pa.types.is_large_string(kind):
        h.update(np.zeros(1, np.int64).tobytes())
    for v in values:
        h.update(v.tobytes())
    if pa.types.is_large_string(kind):
        for block in blocks.frames([name]):
            h.update(utf8_buffers(_canonical(block.get_column(name)))[1])


def frame_digest(df: pl.DataFrame | Blocks) -> str:
    """xxh3-128 over the frame's values, column names and row order (not its storage or its blocks).

    xxh3 rather than sha256 because this runs over every byte of every version (~10x faster);
    it guards against accidental change, not against an adversary. A frame given as blocks gives
    the digest of the same rows as one DataFrame.
    """
    blocks = as_blocks(df)
    h = xxhash.xxh3_128()
    h.update(f"rows={blocks.height}".encode())
    for name in sorted(blocks.schema.names()):
        _hash_column(h, blocks, name)
    return h.hexdigest()


def json_digest(obj: object) -> str:
    """sha256 of a JSON-able object in canonical form (sorted keys, no whitespace)."""
    import json

    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
