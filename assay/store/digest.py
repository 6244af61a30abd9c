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


def _hash_array(h: xxhash.xxh3_128, arr: pa.Array) -> None:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        h.update(np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8).tobytes())
    else:
        h.update(b"no-nulls")
    if pa.types.is_large_string(arr.type):
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
        data = arr.buffers()[2]
        start, end = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
        h.update((offsets - start).tobytes())
        if data is not None:
            h.update(memoryview(data)[start:end])
    else:
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        h.update(np.ascontiguousarray(values).tobytes())


def frame_digest(df: pl.DataFrame) -> str:
    """xxh3-128 over the frame's values, column names and row order (not its storage).

    xxh3 rather than sha256 because this runs over every byte of every version (~10x faster);
    it guards against accidental change, not against an adversary.
    """
    h = xxhash.xxh3_128()
    h.update(f"rows={df.height}".encode())
    for name in sorted(df.columns):
        canon = _canonical(df.get_column(name))
        arr = canon.to_arrow()
        if pa.types.is_string(arr.type) or pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.large_string())
        h.update(f"\x00{name}\x00{arr.type}\x00".encode())
        _hash_array(h, arr)
    return h.hexdigest()


def json_digest(obj: object) -> str:
    """sha256 of a JSON-able object in canonical form (sorted keys, no whitespace)."""
    import json

    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
