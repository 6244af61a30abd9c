"""Gopher's repetition signals: duplicate lines and paragraphs, and repeated word n-grams.

All of them compare punctuation tokens (`assay.curate.words`) by hash, so case, spacing and
punctuation do not matter. They work on one chunk's flat token arrays; `bounds` are the rows'
first token indices.
"""

from __future__ import annotations

import numpy as np

from assay.curate.words import Powers, poly_prefix, prefix_sums, span_hashes

_INDEX_BITS = 21  # token index inside a chunk (< 2 MiB of bytes, so < 2**21 tokens)
_LOW = np.uint64((1 << _INDEX_BITS) - 1)
_M_NGRAM = np.uint64(0x100000001B3)
_MIX_TOKEN, _MIX_ROW = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def repeated_lines(
    data: np.ndarray,
    offs: np.ndarray,
    t_starts: np.ndarray,
    t_bounds: np.ndarray,
    hashes: np.ndarray,
    pw: Powers,
) -> dict[str, np.ndarray]:
    """Gopher's duplicate line and paragraph fractions: the share of lines (paragraphs) that repeat
    an earlier one in the row. Lines are compared by their tokens, so case, spacing and punctuation
    do not matter, and lines without a letter or digit (blank lines, '---', code fences) are not
    counted; paragraphs are runs of such counted lines."""
    rows = len(offs) - 1
    newlines = np.flatnonzero(data == 0x0A)
    starts = np.sort(np.concatenate([offs[:-1], newlines + 1]))
    ends = np.sort(np.concatenate([newlines, offs[1:]]))
    lo, hi = np.searchsorted(t_starts, starts), np.searchsorted(t_starts, ends)
    content = np.flatnonzero(hi > lo)
    row = np.searchsorted(t_bounds, lo[content], side="right") - 1
    new_para = np.ones(len(content), bool)
    new_para[1:] = (content[1:] != content[:-1] + 1) | (row[1:] != row[:-1])
    heads = np.flatnonzero(new_para)
    tails = np.r_[heads[1:], len(content)][: len(heads)] - 1
    prefix = poly_prefix(hashes, pw)  # a line's hash is the span hash of its tokens' hashes
    lines = span_hashes(prefix, lo[content], hi[content], pw)
    paragraphs = span_hashes(prefix, lo[content[heads]], hi[content[tails]], pw)
    return {
        "q_dup_line_frac": _later_share(row, lines, rows),
        "q_dup_para_frac": _later_share(row[heads], paragraphs, rows),
    }


def _later_share(row: np.ndarray, hashes: np.ndarray, rows: int) -> np.ndarray:
    """Per row, the share of items whose hash equals an earlier item's in the same row (0 if none)."""
    key = (row.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64)
    key.sort()
    later = key[1:][key[1:] == key[:-1]]
    total = np.bincount(row, minlength=rows)
    copies = np.bincount((later >> np.uint64(32)).astype(np.int64), minlength=rows)
    return copies / np.maximum(total, 1)


def ngram_fractions(
    h: np.ndarray, chars: np.ndarray, bounds: np.ndarray, top_ns: tuple[int, ...], dup_ns: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Gopher's repetition fractions for each configured n, as shares of the row's token characters.

    top n: characters of the most repeated n-gram (its count x its characters; only n-grams seen at
    least twice; capped at 1). dup n: characters of tokens inside any later copy of an n-gram. An
    n-gram can only repeat where its (n-1)-gram prefix and suffix repeat, so past n=2 each n looks
    only at those positions (for ~1 KB prose: 20 % of tokens at n=3, 2 % at n=6).
    """
    rows, tokens = len(bounds) - 1, len(h)
    assert tokens < 1 << _INDEX_BITS, "chunks are cut small enough for token indices to fit the sort keys"
    out = {f"q_top_{n}gram_frac": np.zeros(rows) for n in top_ns}
    out |= {f"q_dup_{n}gram_frac": np.zeros(rows) for n in dup_ns}
    if not out or tokens < 2:
        return out
    row = np.repeat(np.arange(rows, dtype=np.int64), np.diff(bounds))
    cc = prefix_sums(chars, np.int64)
    denom = np.maximum(cc[bounds[1:]] - cc[bounds[:-1]], 1)
    spread = h.astype(np.uint64) * _MIX_TOKEN  # every token bit reaches the high bits the keys keep
    ngram = spread ^ row.astype(np.uint64) * _MIX_ROW  # a row salt keeps copies in different rows apart
    key = _bigram_keys(ngram, spread, row)
    for n in range(2, max(top_ns + dup_ns) + 1):
        token, later, repeated = _copies(key)
        if n in top_ns:
            first, count = _repeated_heads(token, later)
            value = np.minimum(count * (cc[first + n] - cc[first]), denom[row[first]])
            out[f"q_top_{n}gram_frac"] = _row_max(row[first], value, rows) / denom
        if n in dup_ns:
            out[f"q_dup_{n}gram_frac"] = _covered(token[later], n, chars, row, rows) / denom
        start = _extend(token[repeated], n, row)
        if not len(start):
            break
        ngram[start] = ngram[start] * _M_NGRAM + spread[start + n]
        key = (ngram[start] & ~_LOW) | start.astype(np.uint64)
        key.sort()
    return out


def _bigram_keys(ngram: np.ndarray, spread: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Sorted (hash, index) keys of every bigram inside a row; updates `ngram` to bigram hashes.
    Pairs that straddle two rows get an all-ones hash, sort last and are cut off."""
    m = len(row) - 1
    ngram[:m] = ngram[:m] * _M_NGRAM + spread[1:]
    key = (ngram[:m] & ~_LOW) | np.arange(m, dtype=np.uint64)
    straddle = np.flatnonzero(row[1:] != row[:-1])
    key[straddle] |= ~_LOW
    key.sort()
    return key[: m - len(straddle)]


def _copies(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From sorted (hash, index) keys: each n-gram's token index, a mask of later copies (same hash
    as the key before) and a mask of all copies of repeated n-grams. Sorting puts copies together in
    text order, so no hash table is needed (Polars' hash-based distinct measured ~10x slower here)."""
    group = key >> np.uint64(_INDEX_BITS)
    later = np.zeros(len(key), bool)
    np.equal(group[1:], group[:-1], out=later[1:])
    repeated = later.copy()
    repeated[:-1] |= later[1:]
    return (key & _LOW).view(np.int64), later, repeated


def _repeated_heads(token: np.ndarray, later: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token index of the first copy of each repeated n-gram, and its number of copies."""
    heads = np.flatnonzero(~later)
    sizes = np.diff(heads, append=len(later))
    return token[heads[sizes > 1]], sizes[sizes > 1]


def _row_max(row: np.ndarray, value: np.ndarray, rows: int) -> np.ndarray:
    """Largest value per row (0 where none): sort (row, value) keys and keep each row's last
    (several times faster than np.maximum.at). Values must be < 2**32."""
    key = (row.astype(np.uint64) << np.uint64(32)) | value.astype(np.uint64)
    key.sort()
    top_row = (key >> np.uint64(32)).astype(np.int64)
    last = np.ones(len(key), bool)
    np.not_equal(top_row[1:], top_row[:-1], out=last[:-1])
    out = np.zeros(rows)
    out[top_row[last]] = key[last] & np.uint64(0xFFFFFFFF)
    return out


def _extend(members: np.ndarray, n: int, row: np.ndarray) -> np.ndarray:
    """Start indices of (n+1)-grams that can repeat: their n-gram prefix and suffix both repeat."""
    is_member = np.zeros(len(row) + 1, bool)
    is_member[members] = True
    cand = members[is_member[members + 1] & (members + n < len(row))]
    return cand[row[np.minimum(cand + n, len(row) - 1)] == row[cand]]


def _covered(later: np.ndarray, n: int, chars: np.ndarray, row: np.ndarray, rows: int) -> np.ndarray:
    """Per row, the characters of tokens covered by the n-grams starting at `later`."""
    mask = np.zeros(len(chars), bool)
    for k in range(n):
        mask[later + k] = True
    covered = np.flatnonzero(mask)
    return np.bincount(row[covered], weights=chars[covered], minlength=rows)
