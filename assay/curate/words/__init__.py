"""What a word is in curation: every tokenisation the curate steps use, defined once here.

Each has one implementation, a vectorised numpy pass over the UTF-8 bytes of a whole column
(`buffers.utf8_buffers`); none builds a Python string per token.

**Unicode words** (`word_hashes`; near-dedup's word shingles, decontamination's n-grams): maximal
runs of word characters of the text lowercased character by character. A word character is a
Unicode letter, mark, number or connector punctuation (`is_word_char`: categories L*, M*, N*, Pc);
everything else (punctuation, symbols, whitespace) only separates. On ASCII text this is
`[a-z0-9_]+` of the lowercased text, and it is what Polars' `str.to_lowercase().str.extract_all(r"\\w+")`
finds, except on these characters, which are rare in prose and which the tests pin:

- other numbers (category No: `²`, `½`, `①`) are word characters here, not in regex `\\w`;
- symbols that Unicode counts as alphabetic (circled and squared letters such as `Ⓐ`), the zero-width
  joiners U+200C/U+200D, and code points that Python's Unicode database does not know yet are in
  regex `\\w`, not here;
- a capital sigma at the end of a word lowercases to `σ` here and to `ς` in Polars (except in a text
  that also holds a capital like `İ`, which goes through Polars' lowercasing).

Each word is hashed to 64 bits from its lowercased bytes alone, so hashes are stable across runs,
processes and machines, and two sides of a comparison can be hashed apart.

**Characters** (`char_hashes`; near-dedup's character shingles): the characters of the lowercased
text with every whitespace run replaced by one space and the ends stripped.

**Whitespace words** (`whitespace_words`; the quality step's word count, alphabetic-word ratio and
symbol ratio): maximal runs of bytes other than ASCII whitespace and control characters. This is
Gopher's published definition (it splits on whitespace), and its thresholds assume it.

**Punctuation tokens** (`punctuation_tokens`; the quality step's stop words, the letters and digits
that mean word length counts, and repeated lines, paragraphs and n-grams): maximal runs of ASCII
letters and digits and non-ASCII characters, i.e. whitespace words split at ASCII punctuation and
symbols, compared with ASCII case folded; `don't` is `don` + `t` (`is_punctuation_token`). Unlike
Unicode words, `_` separates, non-ASCII punctuation and symbols (`—`, `€`, curly quotes) stay inside
a token, and non-ASCII letters keep their case. It stays separate because every `q_*` signal of
every curated version is measured with it and the quality thresholds were calibrated on those
values: moving it onto Unicode words would change the signals, and so the version ids, of existing
data. Its hashes are 32-bit and position-free (`span_hashes`), which lets the quality step hash
whole lines and n-grams from token hashes.
"""

from assay.curate.words.buffers import char_counts, prefix_sums, ramp, runs, utf8_buffers
from assay.curate.words.gopher import (
    Powers,
    is_punctuation_token,
    poly_prefix,
    powers,
    punctuation_token_hashes,
    punctuation_tokens,
    span_hashes,
    whitespace_words,
)
from assay.curate.words.unicode import char_hashes, is_word_char, token_hashes, word_hashes

__all__ = [
    "Powers",
    "char_counts",
    "char_hashes",
    "is_punctuation_token",
    "is_word_char",
    "poly_prefix",
    "powers",
    "prefix_sums",
    "punctuation_token_hashes",
    "punctuation_tokens",
    "ramp",
    "runs",
    "span_hashes",
    "token_hashes",
    "utf8_buffers",
    "whitespace_words",
    "word_hashes",
]
