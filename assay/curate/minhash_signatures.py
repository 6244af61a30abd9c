"""Shingles and MinHash signatures for many documents at once.

Everything here works on flat arrays over a chunk of documents (token hashes from
`assay.curate.words`, arithmetic in numpy); no Python object is built per document. A shingle is
n consecutive token hashes folded by a polynomial mod 2**64 (kept whole for exact Jaccard);
its high 32 bits feed the permutations. The permutation scheme is datasketch's "affine32" (its
default since 2.0): the 32-bit hash is pre-mixed with the MurmurHash3 finaliser, then
permutation k maps it to `a_k * h + b_k mod 2**32`, with `(a, b)` drawn exactly as
`datasketch.MinHash(num_perm, seed)` draws them, so given the same 32-bit shingle hashes our
signatures equal datasketch's bit for bit (tests/curate/test_minhash.py checks it).

Token and shingle hashes depend only on the text, so signatures are a function of the texts
and the seed, identical across runs, machines, thread counts and chunk sizes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from assay.curate.threads import parallel_map
from assay.curate.words import ramp, token_hashes

# Odd 64-bit multiplier for the polynomial that folds n token hashes into one shingle hash.
_POLY = np.uint64(0x9E3779B97F4A7C15)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))
# Shingle hashes x permutations held in one scratch block (8 MiB of uint32).
_BLOCK_ELEMENTS = 1 << 21
# Documents per work unit, and token positions per pass of the n-gram polynomial.
_CHUNK_DOCS = 2048
_POLY_BLOCK = 1 << 15
_EMPTY_TOKEN = np.uint64(0x2545F4914F6CDD1D)


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of some documents, flat: the k-th of `rows` owns `hashes[offsets[k]:offsets[k + 1]]`.

    A segment holds one entry per token position and is never empty: the last n - 1 positions
    repeat the document's first shingle, and a document shorter than n tokens (or empty) is a
    single shingle repeated. Repeats change neither the shingle *set* (what `jaccard` compares)
    nor a MinHash, and they spare a compaction pass.
    """

    rows: np.ndarray  # int64, sorted row numbers of the documents held
    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, length len(rows) + 1

    def segments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions of the given rows' shingles, and the offsets of the gathered result."""
        return take_segments(self.offsets, np.searchsorted(self.rows, rows))


def signatures_of(
    texts: pl.Series,
    *,
    kind: Literal["word", "char"],
    n: int,
    num_perm: int,
    seed: int,
    used: int | None = None,
) -> np.ndarray:
    """The MinHash signature of every text, as a (used, n_docs) uint32 matrix.

    `used` (default: all `num_perm`) keeps only the first permutations of the `num_perm` drawn:
    LSH reads only bands x rows of them, as datasketch's MinHashLSH does, so the rest need no work.

    Documents go in chunks small enough for the working arrays to stay in cache, one thread
    per core (Polars and numpy release the GIL); a chunk's result does not depend on the
    others. Shingles are dropped once hashed: only candidates' are needed again, and
    `shingles_of` recomputes those rather than hold them all (1.5x the text size).
    """
    _recycle_chunk_memory()
    a, b = permutations(num_perm, seed)
    perms = a[:used], b[:used]
    sig = np.empty((len(perms[0]), len(texts)), np.uint32)
    bounds = list(range(0, len(texts), _CHUNK_DOCS)) + [len(texts)]
    local = threading.local()  # one scratch block per thread: fresh pages cost more than the maths

    def work(k: int) -> None:
        if not hasattr(local, "scratch"):
            local.scratch = np.empty((len(perms[0]), _block(len(perms[0]))), np.uint32)
        hashes, offsets = shingle(texts.slice(bounds[k], bounds[k + 1] - bounds[k]), kind=kind, n=n)
        sig[:, bounds[k] : bounds[k + 1]] = signatures(to_hash32(hashes), offsets, perms, local.scratch)

    parallel_map(work, len(bounds) - 1)
    return sig


def _recycle_chunk_memory() -> None:
    """Let the allocator recycle the per-chunk arrays instead of asking the kernel for new pages.

    glibc hands out blocks above its mmap threshold (128 KiB at start) as fresh pages, each
    page-faulting on first touch, and raises the threshold to the size of any such block once
    it is freed. Freeing one 16 MiB block up front moves it past our chunk arrays: on a 2-core
    VM this cut 100k page faults and 0.35 s of system time per 100k documents. No effect on
    results, nor on other allocators.
    """
    del_me = np.ones(16 << 20, np.uint8)
    del del_me


def shingles_of(texts: pl.Series, rows: np.ndarray, *, kind: Literal["word", "char"], n: int) -> Shingles:
    """The shingles of the given rows (any order, repeats allowed) of `texts`, in cache-sized chunks."""
    rows = np.unique(rows)
    bounds = list(range(0, len(rows), _CHUNK_DOCS)) + [len(rows)]
    parts = parallel_map(
        lambda k: shingle(texts.gather(rows[bounds[k] : bounds[k + 1]]), kind=kind, n=n), len(bounds) - 1
    )
    sizes = np.cumsum([0] + [len(h) for h, _ in parts])
    offsets = np.concatenate(
        [np.zeros(1, np.int64)] + [o[1:] + s for (_, o), s in zip(parts, sizes, strict=False)]
    )
    hashes = np.concatenate([h for h, _ in parts]) if parts else np.zeros(0, np.uint64)
    return Shingles(rows, hashes, offsets.astype(np.int64))


def shingle(texts: pl.Series, *, kind: Literal["word", "char"], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes (uint64, one per token position) and segment offsets of a few texts."""
    flat, counts = token_hashes(texts, kind)
    if (counts == 0).any():
        # An empty document is one empty token, so all empty documents are copies of each other.
        empty = counts == 0
        flat = np.insert(flat, (np.cumsum(counts) - counts)[empty], _EMPTY_TOKEN)
        counts = np.where(empty, 1, counts)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return _ngram_hashes(flat, offsets, n), offsets


def _ngram_hashes(tokens: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """Fold each window of n consecutive token hashes into one uint64 (a polynomial mod 2**64).

    Windows are computed over the whole chunk at once, then the positions whose window would
    cross into the next document are overwritten (see `Shingles`).
    """
    size = len(tokens)
    padded = np.concatenate([tokens, np.zeros(n - 1, np.uint64)])
    out = np.empty(size, np.uint64)
    for s in range(0, size, _POLY_BLOCK):  # blocked so the n passes stay in cache
        e = min(size, s + _POLY_BLOCK)
        window = out[s:e]
        window[:] = padded[s:e]
        for j in range(1, n):
            window *= _POLY
            window += padded[s + j : e + j]
    starts, counts = offsets[:-1], np.diff(offsets)
    long = counts >= n
    tail = np.repeat(starts[long] + counts[long] - n + 1, n - 1) + np.tile(np.arange(n - 1), long.sum())
    out[tail] = np.repeat(out[starts[long]], n - 1)
    short = ~long
    out[np.repeat(starts[short], counts[short]) + ramp(counts[short])] = np.repeat(
        _short_hashes(tokens, starts[short], counts[short], n), counts[short]
    )
    return out


def _short_hashes(tokens: np.ndarray, starts: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """The same polynomial over a short document's tokens, padded with zero hashes to n."""
    out = np.zeros(len(starts), np.uint64)
    for j in range(n):
        out *= _POLY
        present = j < counts
        out[present] += tokens[starts[present] + j]
    return out


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 parameters: odd `a` (a bijection mod 2**32) and any `b`, per permutation."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser, the pre-mix datasketch applies before its affine permutations."""
    s1, m1, s2, m2, s3 = _FMIX32
    h = h ^ (h >> s1)
    h *= m1
    h ^= h >> s2
    h *= m2
    h ^= h >> s3
    return h


def to_hash32(hashes: np.ndarray) -> np.ndarray:
    """The 32-bit shingle hash a permutation sees: the high half of the 64-bit one."""
    return (hashes >> np.uint64(32)).astype(np.uint32)


def signatures(
    h32: np.ndarray,
    offsets: np.ndarray,
    perms: tuple[np.ndarray, np.ndarray],
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """MinHash signatures as a (num_perm, n_docs) uint32 matrix: rows are contiguous over documents.

    Shingles go through in fixed-size blocks (a cut may fall inside a document) so the
    (num_perm x block) scratch stays in cache; pieces of one document are min-combined after.
    """
    a, b = perms
    mixed = fmix32(h32)
    block = _block(len(a))
    cuts = np.union1d(offsets[:-1], np.arange(0, len(mixed), block))
    out = np.empty((len(a), len(cuts)), np.uint32)
    bounds = np.searchsorted(cuts, np.arange(0, len(mixed) + block, block))
    if scratch is None:
        scratch = np.empty((len(a), block), np.uint32)
    for k in range(len(bounds) - 1):
        p0, p1 = bounds[k], bounds[k + 1]
        s0, s1 = cuts[p0], min((k + 1) * block, len(mixed))
        perm = np.multiply(a[:, None], mixed[None, s0:s1], out=scratch[:, : s1 - s0])
        perm += b[:, None]
        out[:, p0:p1] = np.minimum.reduceat(perm, cuts[p0:p1] - s0, axis=1)
    if len(cuts) == len(offsets) - 1:
        return out
    return np.minimum.reduceat(out, np.searchsorted(cuts, offsets[:-1]), axis=1)


def _block(num_perm: int) -> int:
    """Shingles per pass of `signatures`: the (num_perm x block) scratch stays near 8 MiB."""
    return max(1024, _BLOCK_ELEMENTS // num_perm)


def take_segments(offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the given documents' segments, and the offsets of the gathered result."""
    lengths = offsets[docs + 1] - offsets[docs]
    new_offsets = np.zeros(len(docs) + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    return np.arange(new_offsets[-1]) + np.repeat(offsets[docs] - new_offsets[:-1], lengths), new_offsets
