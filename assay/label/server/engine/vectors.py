"""Decoded vectors: JSON parsing, the in-process cache of one matrix per vector settings, cosine scores, top k.

Decoding a 384-d vector from its JSON column costs ~0.2 ms, so decoding every stored vector on every
query made a similarity search take seconds at 20k records. Decoded vectors are therefore kept in a
module-level cache, one block per (dataset, vector settings), bounded by VECTOR_CACHE_BYTES (least
recently used blocks are dropped first; a block larger than the budget is used for its query only).
``similarity.py`` explains why the cache can never serve a stale vector.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np

VECTOR_CACHE_BYTES = int(os.environ.get("ASSAY_VECTOR_CACHE_MB", "256")) * 2**20


def parse_vector(raw: Any) -> np.ndarray | None:
    """One stored vector value (JSON text or a list) as float64; None for a missing value."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return np.fromstring(text[1:-1], dtype=np.float64, sep=",")
        except ValueError:
            raw = json.loads(text)
    return np.asarray(raw, dtype=np.float64)


def parse_vectors(texts: Sequence[str | None], dims: int) -> list[np.ndarray | None]:
    """JSON arrays of `dims` numbers decoded with one numpy parse of the concatenation; odd rows one by one."""
    out: list[np.ndarray | None] = [None] * len(texts)
    plain: list[int] = []
    for i, text in enumerate(texts):
        if text is not None and text.count(",") == dims - 1 and text[:1] == "[" and text[-1:] == "]":
            plain.append(i)
        else:
            out[i] = parse_vector(text)
    if plain:
        _parse_plain(texts, plain, dims, out)
    return out


def _parse_plain(texts: Sequence[str | None], plain: list[int], dims: int, out: list) -> None:
    joined = ",".join(texts[i][1:-1] for i in plain)
    try:
        flat = np.fromstring(joined, dtype=np.float64, sep=",")
    except ValueError:
        flat = np.empty(0)
    if flat.size == len(plain) * dims:
        rows = flat.reshape(len(plain), dims)
        for n, i in enumerate(plain):
            out[i] = rows[n]
    else:  # something unusual (nested values, text): decode these rows one by one
        for i in plain:
            out[i] = parse_vector(texts[i])


class VectorBlock:
    """The decoded vectors of one (dataset, vector settings): rows of a matrix plus their row norms.

    `rows` maps a record id (as the database renders it in text) to the vector row's `updated_at` text and
    its row in `matrix` (-1: the stored value is not a vector of `dims` numbers); `keys` names each matrix
    row and `live` says which rows are current (an update appends a row and retires the old one; a delete
    retires it). `fingerprint` is the database's summary of the settings' vector rows when the block last
    matched them (``similarity.py``). Vectors are stored as float32 while every value round-trips exactly
    (what the SDK sends from float32 embeddings), else the block switches to float64.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.rows: dict[str, tuple[str, int]] = {}
        self.keys: list[str] = []
        self.matrix = np.empty((0, dims), dtype=np.float32)
        self.norms = np.empty(0, dtype=np.float64)
        self.live = np.zeros(0, dtype=bool)
        self.used = 0
        self.fingerprint: tuple | None = None
        self.unsaved = 0  # rows fetched or dropped since the block's snapshot was last saved
        self.saved_at: float | None = None  # time.monotonic() of that save (or of the restore)
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (keys as bytes, sorted; their rows)

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.norms.nbytes + self.live.nbytes + 200 * len(self.rows)

    def put(self, fetched: Sequence[tuple[str, str, np.ndarray | None]]) -> None:
        """Store freshly read (record id, updated_at, vector) rows, replacing older versions."""
        good = [
            (key, stamp, row) for key, stamp, row in fetched if row is not None and row.shape == (self.dims,)
        ]
        for key, stamp, row in fetched:
            self._retire(key)
            if row is None or row.shape != (self.dims,):
                self.rows[key] = (stamp, -1)
        if not good:
            return
        values = np.vstack([row for _, _, row in good])
        if self.matrix.dtype == np.float32 and not np.array_equal(values.astype(np.float32), values):
            self.matrix = self.matrix.astype(np.float64)
        self._make_room(len(good))
        start = self.used
        self.matrix[start : start + len(good)] = values
        self.norms[start : start + len(good)] = np.linalg.norm(values, axis=1)
        self.live[start : start + len(good)] = True
        self.used += len(good)
        for offset, (key, stamp, _) in enumerate(good):
            self.rows[key] = (stamp, start + offset)
            self.keys.append(key)

    def restore(
        self, keys: Sequence[str], stamps: Sequence[str], matrix: np.ndarray, norms: np.ndarray
    ) -> None:
        """Take the rows of a saved snapshot (``snapshots.py``) into an empty block, in the saved order."""
        self.matrix, self.norms = np.ascontiguousarray(matrix), np.asarray(norms, dtype=np.float64)
        self.live = np.ones(len(keys), dtype=bool)
        self.used = len(keys)
        self.keys = list(keys)
        self.rows = {key: (stamp, row) for row, (key, stamp) in enumerate(zip(keys, stamps, strict=True))}
        self._sorted = None

    def live_rows(self) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        """(record ids, updated_at stamps, vectors, norms) of the live rows in row order: a copy to save."""
        live = np.flatnonzero(self.live[: self.used])
        keys = [self.keys[row] for row in live]
        return keys, [self.rows[key][0] for key in keys], self.matrix[live], self.norms[live]

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """The live matrix rows of the given record ids (a bytes array; unknown ids are skipped)."""
        if self._sorted is None:
            live = [(key, index) for key, (_, index) in self.rows.items() if index >= 0]
            names = np.asarray([key for key, _ in live], dtype="S")
            order = np.argsort(names)
            self._sorted = (names[order], np.asarray([index for _, index in live], dtype=np.int64)[order])
        names, indices = self._sorted
        if len(names) == 0 or len(keys) == 0:
            return np.empty(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(names, keys), len(names) - 1)
        return indices[at[names[at] == keys]]

    def drop(self, keys: Sequence[str]) -> None:
        """Forget records whose vector rows are gone."""
        for key in keys:
            self._retire(key)
            self.rows.pop(key, None)

    def _retire(self, key: str) -> None:
        self._sorted = None
        entry = self.rows.get(key)
        if entry is not None and entry[1] >= 0:
            self.live[entry[1]] = False

    def _make_room(self, extra: int) -> None:
        """Compact when retired rows dominate, grow (doubling) when still short of `extra` free rows."""
        if self.used + extra <= len(self.matrix):
            return
        if self.used > 2 * int(self.live[: self.used].sum()) + 1000:
            self._compact()
        if self.used + extra > len(self.matrix):
            self._grow(max(self.used + extra, 2 * len(self.matrix)))

    def _grow(self, capacity: int) -> None:
        matrix = np.empty((capacity, self.dims), dtype=self.matrix.dtype)
        norms = np.empty(capacity, dtype=np.float64)
        live = np.zeros(capacity, dtype=bool)
        matrix[: self.used], norms[: self.used] = self.matrix[: self.used], self.norms[: self.used]
        live[: self.used] = self.live[: self.used]
        self.matrix, self.norms, self.live = matrix, norms, live

    def _compact(self) -> None:
        """Drop retired rows (each update leaves its old row behind), keeping the others' order."""
        old = np.flatnonzero(self.live[: self.used])
        self.matrix, self.norms = self.matrix[old], self.norms[old]
        self.live = np.ones(len(old), dtype=bool)
        self.keys = [self.keys[index] for index in old]
        self.used = len(old)
        self._sorted = None
        for new, key in enumerate(self.keys):
            self.rows[key] = (self.rows[key][0], new)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """(1 + cos) / 2 for every row up to `used` (retired ones included: callers mask them).

        One matrix-vector product in the block's precision: float32 for float32 blocks (relative error
        ~1e-7 against float64, several times faster than converting 100k rows), float64 otherwise.
        """
        matrix = self.matrix[: self.used]
        dots = matrix @ query.astype(matrix.dtype)
        norms = self.norms[: self.used] * (np.linalg.norm(query) or 1.0)
        cosine = np.divide(dots, norms, out=np.zeros(self.used), where=norms > 0)
        return (1.0 + cosine) / 2.0


class VectorCache:
    """Blocks by (dataset id, vector settings id), least recently used first out past the byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.blocks: OrderedDict[tuple[UUID, UUID], VectorBlock] = OrderedDict()
        self.lock = threading.Lock()

    def block(self, key: tuple[UUID, UUID], dims: int) -> VectorBlock:
        """The block for `key` (a new, empty one when missing or of other dimensions); marks it used."""
        block = self.blocks.get(key)
        if block is None or block.dims != dims:
            block = self.blocks[key] = VectorBlock(dims)
        self.blocks.move_to_end(key)
        return block

    def fresh_block(self, key: tuple[UUID, UUID], dims: int) -> VectorBlock:
        """A new, empty block for `key` in place of the old one (a whole reload)."""
        self.blocks.pop(key, None)
        return self.block(key, dims)

    def trim(self) -> None:
        total = sum(block.nbytes for block in self.blocks.values())
        while self.blocks and total > self.budget:
            _, dropped = self.blocks.popitem(last=False)
            total -= dropped.nbytes

    def clear(self) -> None:
        with self.lock:
            self.blocks.clear()


# One cache per process (the web server's requests share it; the worker has its own).
VECTORS = VectorCache(VECTOR_CACHE_BYTES)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, best first; ties keep the earlier position (as a stable sort)."""
    if k <= 0 or len(scores) == 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        positions = np.flatnonzero(scores >= kth)
    else:
        positions = np.arange(len(scores))
    return positions[np.argsort(-scores[positions], kind="stable")][:k]
