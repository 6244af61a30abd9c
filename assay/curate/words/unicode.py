"""Unicode words and characters as byte ranges of one buffer, found and hashed in numpy.

The definitions are in the package docstring (`assay.curate.words`): `word_hashes` gives one hash
per Unicode word, `char_hashes` one per character of the whitespace-squashed text.

Splitting every text into Polars strings costs more than the rest of near-dedup together, so
words are found by scanning UTF-8 bytes: ASCII capitals are lowercased in the buffer, and the few
distinct non-ASCII characters of a batch are classified and lowercased through a small Python
lookup (a capital whose lowercase has another byte length, like `İ`, sends its text through
Polars' `to_lowercase` first). A token's hash is a function of its lowercased UTF-8 bytes only,
so it is stable across runs, processes and machines.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

import numpy as np
import polars as pl

from assay.curate.words.buffers import ramp, utf8_buffers

_KEEP_BYTES = np.array([(1 << (8 * m)) - 1 for m in range(8)] + [2**64 - 1], np.uint64)
_MUL1 = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xBF58476D1CE4E5B9)
_PAD = 8  # zero bytes after the buffer, so every 8-byte load stays inside it


def word_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A uint64 hash per Unicode word, flat in text order, and the number of words of each text.

    >>> hashes, counts = word_hashes(pl.Series(["Hello, hello!", "x_1"]))
    >>> counts.tolist(), bool(hashes[0] == hashes[1])
    ([2, 1], True)
    """
    # A space after each text keeps every run of word bytes inside one text.
    data, offsets = utf8_buffers(texts + " ", pad=_PAD)
    separators, resized = _fold_unicode(data, offsets)
    if resized.size:  # texts with a capital whose lowercase has another UTF-8 length
        texts = texts.clone().scatter(resized, texts.gather(resized).str.to_lowercase())
        data, offsets = utf8_buffers(texts + " ", pad=_PAD)
        separators, _ = _fold_unicode(data, offsets)
    starts, ends = _word_ranges(data, separators)
    return _hash_ranges(data, starts, ends), np.diff(np.searchsorted(starts, offsets))


def char_hashes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A uint64 hash per character of the lowercased text with whitespace runs squashed to one
    space and the ends stripped, flat in text order, and the number of characters of each text."""
    squashed = texts.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    data, offsets = utf8_buffers(squashed, pad=_PAD)
    starts = np.flatnonzero((data[:-_PAD] & np.uint8(0xC0)) != 0x80)
    ends = np.append(starts[1:], len(data) - _PAD)
    return _hash_ranges(data, starts, ends), np.diff(np.searchsorted(starts, offsets))


def token_hashes(texts: pl.Series, kind: Literal["word", "char"]) -> tuple[np.ndarray, np.ndarray]:
    """`word_hashes` or `char_hashes`, picked by MinHash's `shingle` setting."""
    return word_hashes(texts) if kind == "word" else char_hashes(texts)


def _fold_unicode(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowercase non-ASCII characters in place; return the byte positions of non-word ones.

    Only the distinct code points of the batch are looked up in Python (usually a few dozen).
    A capital whose lowercase has another byte length (`İ`, the Kelvin sign) is left alone and
    its text's row is returned, for Polars to lowercase.
    """
    x = data[:-_PAD]
    lead = np.flatnonzero(x >= 0xC0)
    size = 2 + (x[lead] >= 0xE0).astype(np.int64) + (x[lead] >= 0xF0)
    points, which = np.unique(_code_points(data, lead, size), return_inverse=True)
    chars = [chr(p) for p in points]
    new_bytes = np.zeros((len(chars), 4), np.uint8)
    changed, resizes = np.zeros(len(chars), bool), np.zeros(len(chars), bool)
    for k, char in enumerate(chars):
        low, raw = char.lower().encode(), char.encode()
        resizes[k] = len(low) != len(raw)
        if low != raw and not resizes[k]:
            changed[k], new_bytes[k, : len(low)] = True, np.frombuffer(low, np.uint8)
    for k in range(4):
        at = changed[which] & (k < size)
        data[lead[at] + k] = new_bytes[which[at], k]
    other = ~np.array([is_word_char(c) for c in chars], bool)[which]
    resized = np.unique(np.searchsorted(offsets, lead[resizes[which]], side="right") - 1)
    return np.repeat(lead[other], size[other]) + ramp(size[other]), resized


def _code_points(data: np.ndarray, lead: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Decode the UTF-8 sequences of the given sizes that start at the given bytes."""
    b = [data[lead + k].astype(np.int64) for k in range(4)]
    two = (b[0] & 0x1F) << 6 | (b[1] & 0x3F)
    three = (b[0] & 0x0F) << 12 | (b[1] & 0x3F) << 6 | (b[2] & 0x3F)
    four = (b[0] & 0x07) << 18 | (b[1] & 0x3F) << 12 | (b[2] & 0x3F) << 6 | (b[3] & 0x3F)
    return np.select([size == 2, size == 3], [two, three], four)


def is_word_char(char: str) -> bool:
    """Whether a character belongs to Unicode words: a letter, mark, number or connector (`_`).

    >>> [is_word_char(c) for c in "a_½-’"]
    [True, True, True, False, False]
    """
    category = unicodedata.category(char)
    return category[0] in "LMN" or category == "Pc"


def _word_ranges(data: np.ndarray, separators: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every run of word bytes (the buffer ends with a non-word byte).

    ASCII capitals are lowercased in place on the way, since the letter test finds them anyway.
    """
    x = data[:-_PAD]
    letter = np.subtract(x | np.uint8(32), np.uint8(97)) < 26
    x |= letter.view(np.uint8) << np.uint8(5)
    word = letter | (np.subtract(x, np.uint8(48)) < 10)
    word |= (x == 95) | (x >= 128)
    word[separators] = False
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    if len(word) and word[0]:
        edges = np.concatenate([[0], edges])
    return edges[0::2], edges[1::2]


def _hash_ranges(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hash each (already lowercased) byte range 8 bytes at a time, then mix."""
    words = np.ndarray((len(data) - 7,), np.uint64, buffer=data, strides=(1,))
    length = ends - starts
    h = _word_at(words, starts, length)
    h ^= length.astype(np.uint64) * _MUL1
    todo, done = np.flatnonzero(length > 8), 8
    while todo.size:  # the few tokens longer than 8 bytes
        more = h[todo] * _MUL2
        more ^= _word_at(words, starts[todo] + done, length[todo] - done)
        h[todo] = more
        done += 8
        todo = todo[length[todo] > done]
    h ^= h >> np.uint64(31)
    h *= _MUL2
    h ^= h >> np.uint64(29)
    return h


def _word_at(words: np.ndarray, at: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The first min(size, 8) bytes at each position, as a little-endian uint64."""
    x = words[at]
    x &= _KEEP_BYTES[np.minimum(size, 8)]
    return x
