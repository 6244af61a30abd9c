"""Where near-dedup measures candidate pairs and joins clusters, and the candidate texts it reads.

`LocalGraph` does both in this process: the candidate rows' texts are read once (`CandidateTexts`,
in memory or in a scratch file read back with `pread`) and pairs measured a batch at a time; clusters
come from the in-memory union-find. The Ray engine gives its own `PairGraph` (`assay.curate.ray_graph`).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import polars as pl
import pyarrow as pa

from assay.curate.minhash_lsh import components, jaccard
from assay.curate.minhash_signatures import Shingles, shingles_of
from assay.curate.spill import spill_error
from assay.store.arrowtext import utf8_buffers
from assay.store.blocks import Blocks, values_at

if TYPE_CHECKING:
    from assay.curate.minhash import MinHashConfig

# The texts of some rows (sorted, unique indices), in that order and in pieces: a Series' gather, or
# block by block from spilled parts.
TextsOf = Callable[[np.ndarray], Iterator[pl.Series]]


def gather_texts(texts: pl.Series) -> TextsOf:
    """A TextsOf over texts held in memory."""
    return lambda rows: iter([texts.gather(rows)])


class PairTexts(Protocol):
    """The texts of candidate rows, ready to measure pairs of them."""

    def jaccard(self, i: np.ndarray, j: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class PairGraph(Protocol):
    """Where candidate pairs are measured and clusters joined: in this process (`LocalGraph`), or
    spread over a cluster's tasks (the Ray engine's)."""

    def pair_texts(self, rows: np.ndarray, cfg: MinHashConfig) -> PairTexts: ...

    def components(self, n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray: ...

    def leading(self, texts: Blocks) -> PairGraph:
        """The graph over `texts`' rows (blocks with a `text` column) followed by this one's rows."""
        ...


@dataclass(frozen=True)
class LocalGraph:
    """Pairs measured and clusters joined in this process (candidate texts kept in a file under
    `scratch` when given, so they need no memory)."""

    texts_of: TextsOf
    scratch: Path | None = None

    def pair_texts(self, rows: np.ndarray, cfg: MinHashConfig) -> PairTexts:
        return CandidateTexts(self.texts_of, rows, cfg, self.scratch)

    def components(self, n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return components(n, i, j)

    def leading(self, texts: Blocks) -> LocalGraph:
        n, after = texts.height, self.texts_of

        def texts_of(rows: np.ndarray) -> Iterator[pl.Series]:  # rows are sorted: the leading ones first
            cut = int(np.searchsorted(rows, n))
            yield from values_at(texts, rows[:cut], "text")
            yield from after(rows[cut:] - n)

        return LocalGraph(texts_of, self.scratch)


# Pairs whose shingles are held at once: shingles take ~1.4x their text, so verifying every candidate
# of a 10M-document corpus at once would need gigabytes; a batch of 25k pairs needs ~200 MB.
VERIFY_BATCH = 25_000
# Candidate texts up to this size stay in memory even when a scratch folder is given: writing and
# mapping a file costs more than it saves for a small corpus (~20 MB of candidates at 100k documents).
IN_MEMORY_TEXT_BYTES = 64 * 2**20


class CandidateTexts:
    """The texts of the rows in candidate pairs, read once; Jaccard measured a batch of pairs at a time.

    With a `scratch` folder, texts beyond `IN_MEMORY_TEXT_BYTES` go to a file there (their bytes end
    to end; the offsets stay in memory, 8 bytes a row) and each batch reads its rows with `pread`. A
    memory map of the file would be simpler, but each row touched maps the pages around it too (the
    kernel's fault-around): 50k random rows of a 1.8 GB file mapped +2.7 GB of RSS, against +83 MB read.
    """

    def __init__(self, texts_of: TextsOf, rows: np.ndarray, cfg: MinHashConfig, scratch: Path | None = None) -> None:
        self.rows = np.unique(rows)
        self.cfg = cfg
        self.path: Path | None = None
        self.offsets = np.zeros(1, np.int64)
        self.texts: pl.Series | None = None
        pieces, held, size = texts_of(self.rows), [pl.Series(dtype=pl.String)], 0
        for piece in pieces:
            held.append(piece)
            size += int(piece.str.len_bytes().sum() or 0)
            if scratch is not None and size > IN_MEMORY_TEXT_BYTES:
                self.path = scratch / f"candidates-{uuid.uuid4().hex[:12]}.txt"
                try:
                    self.offsets = _write_texts(self.path, itertools.chain(held[1:], pieces))
                except OSError as exc:
                    self.close()
                    raise spill_error(exc, scratch) from exc
                return
        self.texts = pl.concat(held)

    def jaccard(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """True Jaccard of the shingle sets of rows i[k] and j[k] (row indices of the corpus)."""
        parts = [self._batch(i[s : s + VERIFY_BATCH], j[s : s + VERIFY_BATCH]) for s in range(0, len(i), VERIFY_BATCH)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _batch(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        rows = np.unique(np.concatenate([i, j]))
        texts = self._take(np.searchsorted(self.rows, rows))
        found = shingles_of(texts, np.arange(len(rows)), kind=self.cfg.shingle, n=self.cfg.ngram)
        return jaccard(Shingles(rows, found.hashes, found.offsets), i, j)

    def _take(self, positions: np.ndarray) -> pl.Series:
        if self.texts is not None:
            return self.texts.gather(positions)
        assert self.path is not None
        return _read_texts(self.path, self.offsets, positions)

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def measure_pairs(texts: pl.Series, rows: np.ndarray, i: np.ndarray, j: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
    """True Jaccard of pairs (i[k], j[k]) of rows, given the texts of `rows` (sorted, unique) in order."""
    return CandidateTexts(lambda _: iter([texts]), rows, cfg).jaccard(i, j)


def _write_texts(path: Path, pieces: Iterator[pl.Series]) -> np.ndarray:
    """The texts' UTF-8 bytes end to end in a file; returns where each starts (and the end)."""
    lengths = []
    with path.open("wb") as sink:
        for piece in pieces:
            bounds, data = utf8_buffers(piece)
            sink.write(data)
            lengths.append(np.diff(bounds))
    return np.concatenate([np.zeros(1, np.int64), *lengths]).cumsum()


def _pread(fd: int, size: int, offset: int) -> bytes:
    """`size` bytes at `offset`: a read may return less (Linux caps one at ~2 GiB), so read until done."""
    parts, done = [], 0
    while done < size:
        part = os.pread(fd, size - done, offset + done)
        if not part:
            raise OSError(f"candidate text file ended at byte {offset + done}, {size - done} bytes short")
        parts.append(part)
        done += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_texts(path: Path, offsets: np.ndarray, positions: np.ndarray) -> pl.Series:
    """The texts at these positions of a `_write_texts` file: one read per run of adjacent rows."""
    if not len(positions):
        return pl.Series(dtype=pl.String)
    starts, ends = offsets[positions], offsets[positions + 1]
    cut = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts, run_ends = starts[np.r_[0, cut]], ends[np.r_[cut - 1, len(positions) - 1]]
    fd = os.open(path, os.O_RDONLY)
    try:
        data = b"".join([_pread(fd, e - s, s) for s, e in zip(run_starts.tolist(), run_ends.tolist(), strict=True)])
    finally:
        os.close(fd)
    bounds = np.concatenate([np.zeros(1, np.int64), np.cumsum(ends - starts)])
    texts = pa.LargeStringArray.from_buffers(len(positions), pa.py_buffer(bounds), pa.py_buffer(data))
    return pl.Series(texts, dtype=pl.String)
