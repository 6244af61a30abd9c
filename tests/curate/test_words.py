"""The tokenisations of `assay.curate.words`: each against a plain-Python reference, and Unicode words
against the Polars `\\w+` tokens decontamination used before it moved onto them."""

from __future__ import annotations

import re
import sys
import unicodedata

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from assay.curate import ngrams
from assay.curate.words import (
    char_counts,
    is_word_char,
    powers,
    punctuation_token_hashes,
    punctuation_tokens,
    runs,
    utf8_buffers,
    whitespace_words,
    word_hashes,
)

ALL_CHARS = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]


def _regex_word_chars(chars: list[str]) -> list[bool]:
    return pl.Series(chars).str.contains(r"^\w$").to_list()


# Characters where Polars' regex `\w` and `is_word_char` disagree (the package docstring lists them).
DIFFERENT = {
    c for c, rx in zip(ALL_CHARS, _regex_word_chars(ALL_CHARS), strict=True) if rx != is_word_char(c)
}
SIGMA = "Σ"  # lowercases to `ς` at a word's end in Polars, to `σ` here


def _resizes(char: str) -> bool:
    return len(char.lower().encode()) != len(char.encode())


def _reference_words(text: str) -> list[str]:
    """The documented Unicode words: runs of letters, marks, numbers and `_`, lowercased char by char."""
    out, word = [], ""
    for char in text:
        if is_word_char(char):
            word += char.lower()
        elif word:
            out, word = [*out, word], ""
    return [*out, word] if word else out


def _hash_each(words: list[str]) -> list[int]:
    hashes, counts = word_hashes(pl.Series(words, dtype=pl.String))
    assert counts.tolist() == [1] * len(words), "each reference word is one word"
    return hashes.tolist()


unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
mixed_text = st.lists(
    st.sampled_from(["The", "cat", "İstanbul", "naïve", "ÉTÉ", "x_1", "½", "日本語", "😀", "don't", "Straße"])
    | st.sampled_from([" ", ", ", "—", "\n", "\u00a0", "-", "_", "’"]),
    max_size=30,
).map("".join)


def test_the_regex_disagreements_are_only_the_documented_ones():
    # ours: other numbers (No); regex: Unicode-alphabetic symbols (So), the zero-width joiners, and
    # code points this Python's Unicode database does not know (Cn).
    for char in DIFFERENT:
        category = unicodedata.category(char)
        if is_word_char(char):
            assert category == "No", (hex(ord(char)), category)
        else:
            assert category in {"So", "Cn"} or char in "\u200c\u200d", (hex(ord(char)), category)
    assert {"²", "½", "Ⓐ", "\u200d"} <= DIFFERENT and not {"a", "_", "é", "-", "’"} & DIFFERENT


@settings(max_examples=300, deadline=None)
@given(st.lists(unicode_text | mixed_text, min_size=1, max_size=6))
def test_unicode_words_equal_the_old_decontamination_tokens(texts):
    """Outside the documented characters, `word_hashes` finds exactly the words the Polars
    tokeniser found (lowercase, then `\\w+`), text by text and in order."""
    texts = ["".join(c for c in t if c not in DIFFERENT and c != SIGMA) for t in texts]
    old = pl.Series(texts).str.to_lowercase().str.extract_all(r"\w+").to_list()
    hashes, counts = word_hashes(pl.Series(texts))
    assert counts.tolist() == [len(words) for words in old]
    assert hashes.tolist() == _hash_each([w for words in old for w in words])


@settings(max_examples=300, deadline=None)
@given(st.lists(unicode_text | mixed_text, min_size=1, max_size=6))
def test_unicode_words_follow_the_documented_definition(texts):
    # A text holding a capital like `İ` is lowercased by Polars, which turns a final `Σ` into `ς`.
    assume(not any(SIGMA in t and any(map(_resizes, t)) for t in texts))
    hashes, counts = word_hashes(pl.Series(texts))
    expected = [_reference_words(t) for t in texts]
    assert counts.tolist() == [len(words) for words in expected]
    assert hashes.tolist() == _hash_each([w for words in expected for w in words])


def test_word_hashes_depend_on_the_word_alone():
    first, _ = word_hashes(pl.Series(["Alpha beta", None, "GAMMA"]))
    again, counts = word_hashes(pl.Series(["gamma", "x BETA alpha"]))
    assert counts.tolist() == [1, 3]
    assert first.tolist() == [again[3], again[2], again[0]]


def test_decontamination_tokens_are_unicode_words():
    texts = pl.Series(["Natalia sold 48 clips, in April!", None, "x² = ½ of ⓐ"])
    tok = ngrams.tokenize(texts)
    hashes, counts = word_hashes(texts.fill_null(""))
    assert tok.lengths.tolist() == counts.tolist() == [6, 0, 3]  # `ⓐ` is a symbol, not a word
    assert tok.hashes.tolist() == hashes.tolist() and tok.doc.tolist() == [0] * 6 + [2] * 3


# --- the quality step's tokenisations ---------------------------------------------------------------

WHITESPACE_WORD = re.compile(rb"[^\x00-\x20]+")
PUNCTUATION_TOKEN = re.compile(rb"[A-Za-z0-9\x80-\xff]+")


def _rows(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data, offsets = utf8_buffers(pl.Series(texts))
    return data, offsets, offsets[:-1][offsets[:-1] < offsets[1:]]


def _reference_spans(pattern: re.Pattern, texts: list[str]) -> tuple[list[int], list[int]]:
    starts, ends, base = [], [], 0
    for text in texts:
        raw = text.encode()
        for m in pattern.finditer(raw):
            starts.append(base + m.start())
            ends.append(base + m.end())
        base += len(raw)
    return starts, ends


@settings(max_examples=200, deadline=None)
@given(st.lists(unicode_text | mixed_text, min_size=1, max_size=6))
def test_whitespace_words_and_punctuation_tokens_match_byte_regexes(texts):
    data, _, row_starts = _rows(texts)
    starts, ends = whitespace_words(data, row_starts)
    assert (starts.tolist(), ends.tolist()) == _reference_spans(WHITESPACE_WORD, texts)
    t_starts, t_ends, hashes = punctuation_tokens(data, row_starts, powers(max(len(data), 1)))
    assert (t_starts.tolist(), t_ends.tolist()) == _reference_spans(PUNCTUATION_TOKEN, texts)
    tokens = [bytes(data[s:e]).decode() for s, e in zip(t_starts, t_ends, strict=True)]
    folded = [t.lower() if t.isascii() else t for t in tokens]  # ASCII case folds, other case stays
    for token, h in zip(folded, hashes.tolist(), strict=True):
        if token == token.lower():
            assert punctuation_token_hashes([token]).tolist() == [h]
    assert len(set(hashes.tolist())) == len(set(folded))
    assert char_counts(data, t_starts, t_ends).tolist() == [len(t) for t in tokens]


def test_punctuation_tokens_fold_ascii_case_only():
    data, _, row_starts = _rows(["The THE the", "Été été"])
    _, _, hashes = punctuation_tokens(data, row_starts, powers(len(data)))
    assert len(set(hashes[:3].tolist())) == 1 and hashes[3] != hashes[4]


def test_runs_never_cross_a_row_start():
    data, _, row_starts = _rows(["ab", "cd", "", " e"])
    assert [x.tolist() for x in whitespace_words(data, row_starts)] == [[0, 2, 5], [2, 4, 6]]
    assert [x.tolist() for x in runs(np.zeros(0, bool), row_starts)] == [[], []]


@pytest.mark.parametrize("pad", [0, 8])
def test_utf8_buffers_of_a_slice_with_nulls(pad):
    texts = pl.concat([pl.Series(["skip me"]), pl.Series(["é", None, "xyz"])], rechunk=True).slice(1)
    data, offsets = utf8_buffers(texts, pad=pad)
    assert offsets.tolist() == [0, 2, 2, 5]
    assert bytes(data[: offsets[-1]]) == "éxyz".encode() and len(data) == 5 + pad
    assert not data[5:].any()
    assert utf8_buffers(pl.Series([], dtype=pl.String))[1].tolist() == [0]
