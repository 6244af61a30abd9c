"""The UTF-8 bytes of a string column as one buffer, for work over every row's bytes without a Python
string per row (row ids, digests, byte checks, files of texts)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def utf8_buffers(texts: pl.Series) -> tuple[np.ndarray, memoryview]:
    """(offsets, data): row k's bytes are data[offsets[k]:offsets[k + 1]]; int64 offsets from 0, one more
    than the rows; a null row is empty. Read from Arrow's large_string layout (a copy only where the
    column is held otherwise, e.g. as string views)."""
    arr = texts.to_arrow()
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    if data is None or len(offsets) < 2:
        return np.zeros(len(offsets), np.int64), memoryview(b"")
    return offsets - offsets[0], memoryview(data)[int(offsets[0]) : int(offsets[-1])]
