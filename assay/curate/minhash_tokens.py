"""Tokens as byte ranges of one buffer, found and hashed in numpy, with no string per token.

Tokenisation, as a reader should expect it:
- `word`: maximal runs of word characters (Unicode letters, marks, numbers, connector
  punctuation such as `_`) of the text lowercased character by character; everything else
  (punctuation, symbols, whitespace) only separates. On ASCII this is `[a-z0-9_]+`.
- `char`: the characters of the lowercased text, every whitespace run replaced by one space
  and the ends stripped.

Splitting every text into Polars strings costs more than the rest of near-dedup together, so
word mode scans UTF-8 bytes: ASCII capitals are lowercased in the buffer, and the few distinct
non-ASCII characters of a chunk are classified and lowercased through a small Python lookup
(a capital whose lowercase has another byte length, like `İ`, sends its text through Polars'
`to_lowercase` first). A token's hash is a function of its lowercased UTF-8 bytes only, so it
is stable across runs, machines and library versions.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

import numpy as np
import polars as pl

_KEEP_BYTES = np.array([(1 << (8 * m)) - 1 for m in range(8)] + [2**64 - 1], np.uint64)
_MUL1 = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0xBF58476D1CE4E5B9)


def token_hashes(texts: pl.Series, kind: Literal["word", "char"]) -> tuple[np.ndarray, np.ndarray]:
    """A uint64 hash per token, flat in text order, and the number of tokens of each text."""
    if kind == "char":
        data, offsets = _text_bytes(texts.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars())
        starts, ends = _char_ranges(data)
    else:
        # A space after each text keeps every run of word bytes inside one text.
        data, offsets = _text_bytes(texts + " ")
        separators, resized = _fold_unicode(data, offsets)
        if resized.size:  # texts with a capital whose lowercase has another UTF-8 length
            texts = texts.clone().scatter(resized, texts.gather(resized).str.to_lowercase())
            data, offsets = _text_bytes(texts + " ")
            separators, _ = _fold_unicode(data, offsets)
        starts, ends = _word_ranges(data, separators)
    counts = np.diff(np.searchsorted(starts, offsets))
    return _hash_ranges(data, starts, ends), counts


def _fold_unicode(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowercase non-ASCII characters in place; return the byte positions of non-word ones.

    Only the distinct code points of the chunk are looked up in Python (usually a few dozen).
    A capital whose lowercase has another byte length (`İ`, the Kelvin sign) is left alone and
    its text's row is returned, for Polars to lowercase.
    """
    x = data[:-8]
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
    other = ~np.array([_is_word(c) for c in chars], bool)[which]
    resized = np.unique(np.searchsorted(offsets, lead[resizes[which]], side="right") - 1)
    return np.repeat(lead[other], size[other]) + ramp(size[other]), resized


def _code_points(data: np.ndarray, lead: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Decode the UTF-8 sequences of the given sizes that start at the given bytes."""
    b = [data[lead + k].astype(np.int64) for k in range(4)]
    two = (b[0] & 0x1F) << 6 | (b[1] & 0x3F)
    three = (b[0] & 0x0F) << 12 | (b[1] & 0x3F) << 6 | (b[2] & 0x3F)
    four = (b[0] & 0x07) << 18 | (b[1] & 0x3F) << 12 | (b[2] & 0x3F) << 6 | (b[3] & 0x3F)
    return np.select([size == 2, size == 3], [two, three], four)


def _is_word(char: str) -> bool:
    """Letters, marks, numbers and connector punctuation (`_`): Unicode's `\\w`, near enough."""
    category = unicodedata.category(char)
    return category[0] in "LMN" or category == "Pc"


def ramp(counts: np.ndarray) -> np.ndarray:
    """0, 1, .., c-1 for each count c, concatenated."""
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)


def _text_bytes(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of all texts back to back (plus 8 zero bytes for word loads) and text offsets."""
    array = texts.to_arrow(compat_level=pl.CompatLevel.oldest())
    _, raw_offsets, raw_data = array.buffers()
    offsets = np.frombuffer(raw_offsets, np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.zeros(offsets[-1] - offsets[0] + 8, np.uint8)
    if raw_data is not None:
        data[:-8] = np.frombuffer(raw_data, np.uint8)[offsets[0] : offsets[-1]]
    return data, offsets - offsets[0]


def _word_ranges(data: np.ndarray, separators: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every run of word bytes (the buffer ends with a non-word byte).

    ASCII capitals are lowercased in place on the way, since the letter test finds them anyway.
    """
    x = data[:-8]
    letter = np.subtract(x | np.uint8(32), np.uint8(97)) < 26
    x |= letter.view(np.uint8) << np.uint8(5)
    word = letter | (np.subtract(x, np.uint8(48)) < 10)
    word |= (x == 95) | (x >= 128)
    word[separators] = False
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    if len(word) and word[0]:
        edges = np.concatenate([[0], edges])
    return edges[0::2], edges[1::2]


def _char_ranges(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every UTF-8 character: a start is any byte that is not a continuation byte."""
    starts = np.flatnonzero((data[:-8] & np.uint8(0xC0)) != 0x80)
    return starts, np.append(starts[1:], len(data) - 8)


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
