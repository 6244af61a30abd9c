"""Word n-gram hashing over many documents at once (numpy), for decontamination and overlap checks.

Tokens are lower-cased word characters. Token hashes come from Polars' string hash with a
fixed seed, so both sides of a comparison must be hashed in the same process (they always are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

_MULT = np.uint64(0x100000001B3)  # FNV prime: a cheap, well-mixed polynomial base
TOKEN = r"\w+"


@dataclass(frozen=True)
class Tokens:
    """Flattened token hashes with the document each belongs to and per-document counts."""

    doc: np.ndarray  # int64, doc index of each token
    hashes: np.ndarray  # uint64
    lengths: np.ndarray  # int64, tokens per doc

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)


def tokenize(texts: pl.Series) -> Tokens:
    """Lower-cased word tokens of every text, hashed."""
    lists = texts.fill_null("").str.to_lowercase().str.extract_all(TOKEN)
    lengths = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = lists.explode().drop_nulls()
    hashes = flat.hash(seed=7).to_numpy().astype(np.uint64, copy=False)
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
    acc = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc = acc * _MULT + tok.hashes[j : j + m]
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
    order = np.argsort(ref_hash, kind="stable")
    sorted_ref = ref_hash[order]
    pos = np.clip(np.searchsorted(sorted_ref, query_hash), 0, sorted_ref.size - 1)
    match = sorted_ref[pos] == query_hash
    hits: dict[int, int] = {}
    for q, r in zip(query_doc[match].tolist(), ref_doc[order[pos[match]]].tolist(), strict=True):
        hits.setdefault(q, r)
    return hits
