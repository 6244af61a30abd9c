"""The quality step's whitespace words and punctuation tokens, over UTF-8 bytes in numpy.

The definitions, and why they differ from Unicode words, are in the package docstring
(`assay.curate.words`). Both work on a batch's byte buffer and its rows' start offsets, and never
cross a row start. Punctuation tokens are hashed with a position-free polynomial hash mod 2**32
(`span_hashes`), so the hashes of whole lines or n-grams can be built from token hashes the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay.curate.words.buffers import prefix_sums, runs

_M = np.uint32(0x01000193)  # odd, so invertible mod 2**32


def _byte_values() -> np.ndarray:
    """Random nonzero value per token byte for hashing; 0 for whitespace, control characters and ASCII
    punctuation, which therefore end tokens. ASCII letters fold case."""
    values = np.random.default_rng(0x5EED).integers(1, 2**32, size=256, dtype=np.uint32)
    values[0x41:0x5B] = values[0x61:0x7B]
    values[[b for b in range(0x80) if not chr(b).isalnum()]] = 0
    return values


_VALUES = _byte_values()


@dataclass(frozen=True)
class Powers:
    """M**j and its inverse mod 2**32 for j < len(pw), which make span hashes position-free."""

    pw: np.ndarray
    ipw: np.ndarray


def powers(size: int) -> Powers:
    """Powers for spans that lie inside a buffer of `size` values (build once, reuse per batch)."""
    inv = np.uint32(pow(int(_M), -1, 2**32))
    pw, ipw = np.full(size, _M, np.uint32), np.full(size, inv, np.uint32)
    pw[0] = ipw[0] = 1
    return Powers(np.cumprod(pw, dtype=np.uint32), np.cumprod(ipw, dtype=np.uint32))


def poly_prefix(values: np.ndarray, pw: Powers) -> np.ndarray:
    """Prefix sums of value * M**position over uint32 `values` (mod 2**32), for `span_hashes`."""
    return prefix_sums(values * pw.pw[: len(values)], np.uint32)


def span_hashes(prefix: np.ndarray, starts: np.ndarray, ends: np.ndarray, pw: Powers) -> np.ndarray:
    """Order-sensitive 32-bit hash of each span [start, end) of the values behind `prefix`
    (`poly_prefix`), the same wherever the span sits: the span's sum rescaled by M**-start."""
    return (prefix[ends] - prefix[starts]) * pw.ipw[starts]


def whitespace_words(data: np.ndarray, row_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every whitespace word: a run of bytes other than ASCII whitespace and
    control characters (<= 0x20).

    >>> whitespace_words(np.frombuffer(b"a b,c  d", np.uint8), np.array([0]))
    (array([0, 2, 7]), array([1, 5, 8]))
    """
    return runs(data > 0x20, row_starts)


def punctuation_tokens(
    data: np.ndarray, row_starts: np.ndarray, pw: Powers
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[start, end) and hash of every punctuation token: a run of ASCII letters and digits and
    non-ASCII bytes. Hashes fold ASCII case only (`The` = `the`, `Été` != `été`).

    >>> starts, ends, hashes = punctuation_tokens(np.frombuffer(b"The (the)", np.uint8), np.array([0]), powers(9))
    >>> starts.tolist(), ends.tolist(), bool(hashes[0] == hashes[1])
    ([0, 5], [3, 8], True)
    """
    values = np.take(_VALUES, data)
    starts, ends = runs(values != 0, row_starts)
    return starts, ends, span_hashes(poly_prefix(values, pw), starts, ends, pw)


def is_punctuation_token(word: str) -> bool:
    """Whether `word` is exactly one punctuation token (so it can be a stop word).

    >>> is_punctuation_token("naïve"), is_punctuation_token("don't")
    (True, False)
    """
    return bool(word) and all(c.isalnum() for c in word if c.isascii())


def punctuation_token_hashes(words: list[str]) -> np.ndarray:
    """Sorted distinct hashes of single-token words (e.g. stop words), computed like the text's
    tokens; words are lowercased first."""
    hashes = []
    for w in words:
        data = np.frombuffer(w.lower().encode(), np.uint8)
        whole = (np.zeros(1, np.int64), np.full(1, len(data)))
        pw = powers(max(len(data), 1))
        hashes.append(span_hashes(poly_prefix(np.take(_VALUES, data), pw), *whole, pw)[0])
    return np.unique(np.array(hashes, np.uint32))
