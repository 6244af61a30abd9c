"""UTF-8 buffers of string columns, and the array helpers that walk them.

Every tokeniser in `assay.curate.words` works on one flat byte buffer per batch of texts plus the
texts' byte offsets, so no Python object is built per text or per token.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def utf8_buffers(texts: pl.Series, *, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of all texts back to back, and the texts' offsets into them (from 0).

    With `pad=0` the bytes are a read-only view of the column's Arrow buffer (no copy); with
    `pad > 0` they are a writable copy followed by `pad` zero bytes, for in-place case folding and
    8-byte loads. Nulls read as empty texts.

    >>> data, offsets = utf8_buffers(pl.Series(["ab", "é"]))
    >>> bytes(data), offsets.tolist()
    (b'ab\\xc3\\xa9', [0, 2, 4])
    """
    array = texts.to_arrow(compat_level=pl.CompatLevel.oldest())
    if hasattr(array, "combine_chunks"):
        array = array.combine_chunks()
    _, raw_offsets, raw_data = array.buffers()
    if raw_offsets is None:  # an empty column may come without buffers
        offsets = np.zeros(len(array) + 1, np.int64)
    else:
        offsets = np.frombuffer(raw_offsets, np.int64)[array.offset : array.offset + len(array) + 1]
    values = np.frombuffer(raw_data, np.uint8) if raw_data is not None else np.zeros(0, np.uint8)
    values = values[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    if not pad:
        return values, offsets
    data = np.zeros(len(values) + pad, np.uint8)
    data[: len(values)] = values
    return data, offsets


def runs(mask: np.ndarray, row_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the runs of True in `mask`, split where a row starts.

    >>> runs(np.array([1, 1, 0, 1, 1, 1], bool), np.array([0, 4]))
    (array([0, 3, 4]), array([2, 4, 6]))
    """
    if not len(mask):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m8 = mask.view(np.int8)
    step = np.empty(len(m8) + 1, np.int8)
    step[0], step[-1] = m8[0], -m8[-1]
    np.subtract(m8[1:], m8[:-1], out=step[1:-1])
    starts, ends = np.flatnonzero(step == 1), np.flatnonzero(step == -1)
    inner = row_starts[row_starts > 0]
    split = inner[mask[inner] & mask[inner - 1]]
    if len(split):
        starts = np.insert(starts, np.searchsorted(starts, split), split)
        ends = np.insert(ends, np.searchsorted(ends, split), split)
    return starts, ends


def prefix_sums(values: np.ndarray, dtype: type) -> np.ndarray:
    """Prefix sums with a leading 0, so a run [s, e) sums to out[e] - out[s] (cheaper than reduceat)."""
    if values.dtype == bool:
        values = values.view(np.uint8)
    out = np.empty(len(values) + 1, dtype)
    out[0] = 0
    np.cumsum(values, dtype=dtype, out=out[1:])
    return out


def char_counts(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Characters in each byte range [start, end) of UTF-8 `data`: bytes minus continuation bytes.
    Ranges must be sorted and must not overlap.

    >>> char_counts(np.frombuffer("aé b".encode(), np.uint8), np.array([0, 4]), np.array([3, 5]))
    array([2, 1])
    """
    chars = (ends - starts).astype(np.int64)
    cont = np.flatnonzero((data & 0xC0) == 0x80) if (data >= 0x80).any() else np.zeros(0, np.int64)
    if len(cont) > len(data) // 16:  # mostly non-ASCII text: prefix sums beat a search per byte
        sums = prefix_sums((data & 0xC0) == 0x80, np.int32)
        return chars - (sums[ends] - sums[starts])
    if len(cont):
        owner = np.searchsorted(starts, cont, side="right") - 1
        inside = owner >= 0
        inside[inside] = cont[inside] < ends[owner[inside]]
        chars -= np.bincount(owner[inside], minlength=len(starts))
    return chars


def ramp(counts: np.ndarray) -> np.ndarray:
    """0, 1, .., c-1 for each count c, concatenated.

    >>> ramp(np.array([2, 3])).tolist()
    [0, 1, 0, 1, 2]
    """
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)
