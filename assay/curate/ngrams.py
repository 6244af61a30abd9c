"""Word n-gram hashing over many documents at once (numpy), for decontamination and overlap checks.

Tokens are Unicode words (`assay.curate.words.word_hashes`, the tokenisation near-dedup uses), and
their hashes depend on the text alone, so the two sides of a comparison may be hashed apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from assay.curate.words import word_hashes

_MULT = np.uint64(0x100000001B3)  # FNV prime: a cheap, well-mixed polynomial base


@dataclass(frozen=True)
class Tokens:
    """Flattened token hashes with the document each belongs to and per-document counts."""

    doc: np.ndarray  # int64, doc index of each token
    hashes: np.ndarray  # uint64
    lengths: np.ndarray  # int64, tokens per doc


def tokenize(texts: pl.Series) -> Tokens:
    """Unicode words of every text (null: no words), hashed."""
    hashes, lengths = word_hashes(texts.fill_null(""))
    lengths = lengths.astype(np.int64, copy=False)
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    return Tokens(doc, hashes, lengths)


def ngram_hashes(
    tok: Tokens, n: int, *, only_docs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(doc index, hash) of every word n-gram that lies inside one document."""
    total = tok.hashes.shape[0]
    if total < n:
        return np.empty(0, np.int64), np.empty(0, np.uint64)
    m = total - n + 1
    acc = tok.hashes[:m].copy()
    for j in range(1, n):  # in place: sum of hashes[i + j] * _MULT**(n - 1 - j), wrapping mod 2**64
        acc *= _MULT
        acc += tok.hashes[j : j + m]
    doc = tok.doc[:m]
    keep = doc == tok.doc[n - 1 : n - 1 + m]
    if only_docs is not None:
        keep &= np.isin(doc, only_docs)
    return doc[keep], acc[keep]


def first_hits(
    query_doc: np.ndarray, query_hash: np.ndarray, ref_doc: np.ndarray, ref_hash: np.ndarray
) -> dict[int, int]:
    """For each query document sharing any hash with the reference, the first reference doc it shares."""
    if ref_hash.size == 0 or query_hash.size == 0:
        return {}
    maybe = np.flatnonzero(_may_contain(ref_hash, query_hash))
    query_doc, query_hash = query_doc[maybe], query_hash[maybe]
    order = np.argsort(ref_hash, kind="stable")
    sorted_ref = ref_hash[order]
    pos = np.clip(np.searchsorted(sorted_ref, query_hash), 0, sorted_ref.size - 1)
    match = sorted_ref[pos] == query_hash
    hits: dict[int, int] = {}
    for q, r in zip(query_doc[match].tolist(), ref_doc[order[pos[match]]].tolist(), strict=True):
        hits.setdefault(q, r)
    return hits


def _may_contain(ref_hash: np.ndarray, query_hash: np.ndarray) -> np.ndarray:
    """Per query hash: could it be in `ref_hash`? A bit table over the hashes' top bits, about 16
    slots per reference hash, so a few % of misses pass and the binary search runs on those
    (searching every query measured ~10x slower than this lookup)."""
    bits = int(np.clip(np.ceil(np.log2(ref_hash.size * 16)), 12, 30))
    shift = np.uint64(64 - bits)
    table = np.zeros(1 << bits, bool)
    table[ref_hash >> shift] = True
    return table[query_hash >> shift]
