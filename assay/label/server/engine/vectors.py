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
_SCORE_CHUNK = 8192  # rows per matrix product, to bound temporary memory


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
    its row in `matrix` (-1: the stored value is not a vector of `dims` numbers). Vectors are stored as
    float32 while every value round-trips exactly (what the SDK sends from float32 embeddings), else the
    block switches to float64, so scores are computed from exactly the stored numbers either way.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.rows: dict[str, tuple[str, int]] = {}
        self.matrix = np.empty((0, dims), dtype=np.float32)
        self.norms = np.empty(0, dtype=np.float64)
        self.used = 0

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.norms.nbytes + 200 * len(self.rows)

    def put(self, fetched: Sequence[tuple[str, str, np.ndarray | None]]) -> None:
        """Store freshly read (record id, updated_at, vector) rows, replacing older versions."""
        good = [
            (key, stamp, row) for key, stamp, row in fetched if row is not None and row.shape == (self.dims,)
        ]
        for key, stamp, row in fetched:
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
        self.used += len(good)
        for offset, (key, stamp, _) in enumerate(good):
            self.rows[key] = (stamp, start + offset)

    def _make_room(self, extra: int) -> None:
        """Compact when replaced rows dominate, grow (doubling) when still short of `extra` free rows."""
        if self.used + extra <= len(self.matrix):
            return
        live = sum(1 for _, index in self.rows.values() if index >= 0)
        if self.used > 2 * live + 1000:
            self._compact()
        if self.used + extra > len(self.matrix):
            self._grow(max(self.used + extra, 2 * len(self.matrix)))

    def _grow(self, capacity: int) -> None:
        matrix = np.empty((capacity, self.dims), dtype=self.matrix.dtype)
        norms = np.empty(capacity, dtype=np.float64)
        matrix[: self.used], norms[: self.used] = self.matrix[: self.used], self.norms[: self.used]
        self.matrix, self.norms = matrix, norms

    def _compact(self) -> None:
        """Drop rows of replaced vectors (each update leaves its old row behind)."""
        live = [(key, stamp, index) for key, (stamp, index) in self.rows.items() if index >= 0]
        old = np.fromiter((index for _, _, index in live), dtype=np.int64, count=len(live))
        self.matrix, self.norms = self.matrix[old], self.norms[old]
        self.used = len(live)
        for new, (key, stamp, _) in enumerate(live):
            self.rows[key] = (stamp, new)

    def scores(self, indices: np.ndarray, query: np.ndarray) -> np.ndarray:
        """(1 + cos) / 2 for the given rows, in chunks to bound temporary memory."""
        out = np.empty(len(indices), dtype=np.float64)
        query_norm = np.linalg.norm(query) or 1.0
        for start in range(0, len(indices), _SCORE_CHUNK):
            part = indices[start : start + _SCORE_CHUNK]
            dots = self.matrix[part].astype(np.float64, copy=False) @ query
            norms = self.norms[part] * query_norm
            cosine = np.divide(dots, norms, out=np.zeros(len(part)), where=norms > 0)
            out[start : start + len(part)] = (1.0 + cosine) / 2.0
        return out


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
