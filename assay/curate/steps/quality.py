"""Gopher/C4-style quality signals as `q_*` columns, and threshold filters over them.

Signals are measured on the row's whole content (`content_text`), because instruction rows are
short: a 12-word question with a 30-word answer is a fine row, so word minimums apply to the row,
not to each field. Instruction rows (prompt/response or messages) also get response checks on the
response or the last assistant turn. Every threshold can be turned off with `None`, and a check can
be skipped for text rows or for instruction rows alone.

Checks run in `CHECK_ORDER`; the first failing one is the row's `_reason` and `_detail` lists all
that failed with the measured value and the threshold, e.g. "words=3 < min_words=5".

Speed: characters and symbols are Polars expressions; everything about words, lines and n-grams
comes from vectorised numpy passes over the column's UTF-8 bytes (`word_signals`, called on whole
columns through `map_batches`, never per row), because tokenising with Polars regexes and finding
repeated n-grams with Polars hash tables (explode + is_first_distinct / group_by) measured ~10x
slower on 100k 1 KB rows. The comment above `MAX_NGRAM` says how text is tokenised.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Literal, get_args

import numpy as np
import polars as pl
import polars.selectors as cs
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.steps.base import DETAIL, REASON, StepContext, step
from assay.curate.stopwords import ENGLISH_STOP_WORDS, GOPHER_STOP_WORDS
from assay.schema import MESSAGES, PROMPT, RESPONSE, content_text

Check = Literal[
    "empty_response",
    "prompt_equals_response",
    "boilerplate_response",
    "too_short",
    "too_long",
    "duplicate_lines",
    "duplicate_paragraphs",
    "repeated_ngrams",
    "low_mean_word_length",
    "high_mean_word_length",
    "high_symbol_ratio",
    "low_alpha_ratio",
    "no_stop_words",
]
# Check lists them in the order they are tried: the first failure is the row's reason. Response checks
# are the most specific, then length, then repetition (Gopher runs its repetition filter first), then word shape.
CHECK_ORDER: tuple[Check, ...] = get_args(Check)
RESPONSE_CHECKS = frozenset({"empty_response", "prompt_equals_response", "boilerplate_response"})

# Matched case-insensitively at the start of short responses (see `boilerplate_max_chars`).
DEFAULT_BOILERPLATE = [
    r"as an ai(?: language)? model\b",
    r"as a (?:large )?language model\b",
    r"(?:i(?:['’]m| am) )?(?:sorry|afraid)[,.!]? (?:but )?i (?:can(?:['’]?t|not)|am (?:not able|unable)|won['’]?t|will not|must decline)\b",
    r"i apologi[sz]e,? (?:but )?i (?:can(?:['’]?t|not)|am (?:not able|unable)|won['’]?t)\b",
    r"i (?:can(?:['’]?t|not)|am (?:not able|unable) to|won['’]?t) (?:assist|help|comply|fulfill|provide|do that|answer|respond)\b",
    r"i(?:['’]m| am) (?:just )?an? (?:ai|artificial intelligence|language model)\b",
]


class QualityConfig(BaseModel):
    """Options of the `quality` step. `None` turns a threshold off."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int | None = Field(
        10, description="Reject rows whose content has fewer characters (`too_short`)."
    )
    max_chars: int | None = Field(
        100_000, description="Reject rows whose content has more characters (`too_long`)."
    )
    min_words: int | None = Field(
        5, description="Reject rows with fewer whitespace-separated words in the whole content (`too_short`)."
    )
    max_words: int | None = Field(20_000, description="Reject rows with more words (`too_long`).")
    min_mean_word_length: float | None = Field(
        2.5,
        description="Reject rows whose mean word length (letters and digits per word) is lower (`low_mean_word_length`; Gopher: 3, but algebra rows measured 2.7).",
    )
    max_mean_word_length: float | None = Field(
        10.0,
        description="Reject rows whose mean word length is higher (`high_mean_word_length`; Gopher: 10).",
    )
    max_duplicate_line_fraction: float | None = Field(
        0.3,
        description="Reject rows where more than this fraction of lines (those with a letter or digit) repeat an earlier line (`duplicate_lines`; Gopher: 0.3).",
    )
    max_duplicate_paragraph_fraction: float | None = Field(
        0.3,
        description="Reject rows where more than this fraction of paragraphs repeat an earlier one (`duplicate_paragraphs`; Gopher: 0.3).",
    )
    top_ngram_max_fraction: dict[int, float] | None = Field(
        default_factory=lambda: {2: 0.5, 3: 0.5, 4: 0.5},
        description="n -> largest share of the row's token characters that copies of its most repeated n-gram may cover "
        "(`repeated_ngrams`; any 2 <= n <= 10). Gopher's web-page values {2: 0.2, 3: 0.18, 4: 0.16} (with the 5-10 ones) "
        "reject 21 % of GSM8K rows, whose answers restate the question (max measured 0.49); these catch degenerate repetition.",
    )
    duplicate_ngram_max_fraction: dict[int, float] | None = Field(
        default_factory=lambda: {5: 0.6, 10: 0.5},
        description="n -> largest share of token characters inside later copies of n-grams (`repeated_ngrams`; any 2 <= n <= 10). "
        "Gopher's web-page values are {5: 0.15, 6: 0.14, ..., 10: 0.10}. The fraction can only fall as n grows, so 5 and 10 "
        "bracket the rest.",
    )
    ngram_min_words: int = Field(
        50,
        description="Skip the n-gram checks on rows with fewer words: a short answer that restates its question "
        "('What is the capital of France?' / 'The capital of France is Paris.') is mostly repeated n-grams (Gopher: 50-word documents).",
    )
    max_symbol_word_ratio: float | None = Field(
        0.1,
        description="Reject rows with more (runs of '#' + ellipses) per word (`high_symbol_ratio`; Gopher: 0.1).",
    )
    min_alpha_word_ratio: float | None = Field(
        0.4,
        description="Reject rows where a smaller share of words contains a letter (`low_alpha_ratio`; Gopher: 0.8, "
        "but arithmetic rows measured down to 0.48 on GSM8K and code is lower still).",
    )
    min_stop_words: int | None = Field(
        2, description="Reject rows with fewer stop-word tokens (`no_stop_words`; Gopher: 2)."
    )
    stop_words: Literal["english", "gopher"] | list[str] = Field(
        "english",
        description="Stop-word list: 'english' (built-in, ~120 function words), 'gopher' (Gopher's 8) or your own words.",
    )
    reject_empty_response: bool = Field(
        True,
        description="Reject instruction rows whose response / last assistant turn is missing or blank (`empty_response`).",
    )
    reject_prompt_equals_response: bool = Field(
        True,
        description="Reject rows whose response equals the prompt up to case and whitespace (`prompt_equals_response`).",
    )
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE),
        description="Regexes (case-insensitive) matched at the start of short responses (`boilerplate_response`); [] turns it off.",
    )
    boilerplate_max_chars: int | None = Field(
        300,
        description="Only responses up to this many characters can be boilerplate, so a long answer that mentions a refusal stays; None: any length.",
    )
    text_skip: list[Check] = Field(default_factory=list, description="Checks not applied to `text` rows.")
    instruction_skip: list[Check] = Field(
        default_factory=list,
        description="Checks not applied to instruction rows (prompt/response or messages).",
    )

    @field_validator("top_ngram_max_fraction", "duplicate_ngram_max_fraction")
    @classmethod
    def _ngram_sizes(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        for n, frac in (v or {}).items():
            if not 2 <= n <= MAX_NGRAM or not 0 < frac <= 1:
                raise ValueError(
                    f"n-gram thresholds need 2 <= n <= {MAX_NGRAM} and 0 < fraction <= 1; got {n}: {frac}"
                )
        return dict(sorted(v.items())) if v else v

    @field_validator("boilerplate_patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                pl.select(pl.lit("").str.contains(p))
            except pl.exceptions.ComputeError as e:
                raise ValueError(f"boilerplate pattern {p!r} is not a valid regex: {e}") from None
        return v

    @field_validator("stop_words")
    @classmethod
    def _single_tokens(cls, v: str | list[str]) -> str | list[str]:
        for word in [] if isinstance(v, str) else v:
            if not word or any(not c.isalnum() for c in word if c.isascii()):
                raise ValueError(
                    f"stop word {word!r} is not a single token: tokens are split at spaces and ASCII "
                    'punctuation ("don\'t" is "don" + "t"), so list its parts or drop it'
                )
        return v

    def ngram_sizes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self.top_ngram_max_fraction or ()), tuple(self.duplicate_ngram_max_fraction or ())

    def stop_word_list(self) -> list[str]:
        if self.stop_words == "english":
            return sorted(ENGLISH_STOP_WORDS)
        return sorted(GOPHER_STOP_WORDS) if self.stop_words == "gopher" else list(self.stop_words)


# ---------------------------------------------------------------------------------------------------
# Word-level signals: vectorised numpy over UTF-8 bytes, ~1 MiB of rows at a time.
#
# Words are runs of bytes other than ASCII whitespace/control characters (word counts, alphabetic-word
# ratio, mean word length). Tokens are runs of ASCII letters and digits and non-ASCII characters, i.e.
# words split at ASCII punctuation, close to the word tokeniser Gopher used; they are compared with
# ASCII case folded and drive stop words, repeated lines/paragraphs and n-grams. Only a row's first
# MAX_ROW_BYTES (1 MiB) are measured: such rows are far above the default max_chars anyway.
# ---------------------------------------------------------------------------------------------------

MAX_NGRAM = 10
MAX_ROW_BYTES = 1 << 20
_CHUNK_BYTES, _CHUNK_ROWS = 1 << 20, 1 << 14  # ~1 MiB of rows keeps the temporaries in cache
_BLOCK_BYTES = 1 << 26
_INDEX_BITS = 21  # token index inside a chunk (< 2 MiB of bytes, so < 2**21 tokens)
_M_BYTE = np.uint32(0x01000193)  # odd, so invertible mod 2**32
_M_NGRAM = np.uint64(0x100000001B3)
_MIX_TOKEN, _MIX_ROW = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)


def _byte_values() -> np.ndarray:
    """Random nonzero value per token byte for hashing; 0 for whitespace, control characters and ASCII
    punctuation, which therefore end tokens. ASCII letters fold case."""
    values = np.random.default_rng(0x5EED).integers(1, 2**32, size=256, dtype=np.uint32)
    values[0x41:0x5B] = values[0x61:0x7B]
    values[[b for b in range(0x80) if not chr(b).isalnum()]] = 0
    return values


_VALUES = _byte_values()


def _runs(mask: np.ndarray, doc_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the runs of True in `mask`, split where a row starts."""
    if not len(mask):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m8 = mask.view(np.int8)
    step = np.empty(len(m8) + 1, np.int8)
    step[0], step[-1] = m8[0], -m8[-1]
    np.subtract(m8[1:], m8[:-1], out=step[1:-1])
    starts, ends = np.flatnonzero(step == 1), np.flatnonzero(step == -1)
    inner = doc_starts[doc_starts > 0]
    split = inner[mask[inner] & mask[inner - 1]]
    if len(split):
        starts = np.insert(starts, np.searchsorted(starts, split), split)
        ends = np.insert(ends, np.searchsorted(ends, split), split)
    return starts, ends


def _per_row(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums of `values` over index ranges [bounds[i], bounds[i+1]) (empty ranges give 0)."""
    cs = np.zeros(len(values) + 1, np.float64 if values.dtype.kind == "f" else np.int64)
    np.cumsum(values, out=cs[1:])
    return cs[bounds[1:]] - cs[bounds[:-1]]


def _powers(m: int) -> tuple[np.ndarray, np.ndarray]:
    """_M_BYTE**j and its inverse mod 2**32 for j < m, which make position-weighted hashes shift-free."""
    inv = np.uint32(pow(int(_M_BYTE), -1, 2**32))
    pw, ipw = np.full(m, _M_BYTE, np.uint32), np.full(m, inv, np.uint32)
    pw[0] = ipw[0] = 1
    return np.cumprod(pw, dtype=np.uint32), np.cumprod(ipw, dtype=np.uint32)


def _prefix_sums(values: np.ndarray, dtype: type) -> np.ndarray:
    """Prefix sums with a leading 0, so a run [s, e) sums to out[e] - out[s] (cheaper than reduceat)."""
    if values.dtype == bool:
        values = values.view(np.uint8)
    out = np.empty(len(values) + 1, dtype)
    out[0] = 0
    np.cumsum(values, dtype=dtype, out=out[1:])
    return out


def _token_hashes(
    values: np.ndarray, starts: np.ndarray, ends: np.ndarray, pw: np.ndarray, ipw: np.ndarray
) -> np.ndarray:
    """Order-sensitive 32-bit hash of each token's bytes, the same wherever the token sits:
    sum of value(byte) * M**position over the token, rescaled by M**-start (arithmetic mod 2**32)."""
    sums = _prefix_sums(values * pw[: len(values)], np.uint32)
    return (sums[ends] - sums[starts]) * ipw[starts]


def _stop_table(stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A direct-mapped table of the stop-word hashes, indexed by their low bits (grown until no two
    share a slot), so membership is one lookup and one comparison per token."""
    bits = 12
    while len(np.unique(stop & np.uint32((1 << bits) - 1))) < len(stop):
        bits += 1
    slots, used = np.zeros(1 << bits, np.uint32), np.zeros(1 << bits, bool)
    slots[stop & np.uint32((1 << bits) - 1)] = stop
    used[stop & np.uint32((1 << bits) - 1)] = True
    return slots, used


def _is_stop(hashes: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    slots, used = table
    slot = hashes & np.uint32(len(slots) - 1)
    return np.take(used, slot) & (np.take(slots, slot) == hashes)


def _is_letter(data: np.ndarray) -> np.ndarray:
    """ASCII letters, and lead bytes of non-ASCII characters outside U+0080-00BF and U+2000-2FFF
    (Latin-1 signs, punctuation, arrows, maths, box drawing), taken as letters."""
    return (((data | 0x20) - 0x61) < 26) | ((data >= 0xC3) & (data <= 0xF4) & (data != 0xE2))


def _token_chars(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Characters per token: bytes minus UTF-8 continuation bytes."""
    chars = (ends - starts).astype(np.int64)
    cont = np.flatnonzero((data & 0xC0) == 0x80) if (data >= 0x80).any() else np.zeros(0, np.int64)
    if len(cont) > len(data) // 16:  # mostly non-ASCII text: prefix sums beat a search per byte
        sums = _prefix_sums((data & 0xC0) == 0x80, np.int32)
        return chars - (sums[ends] - sums[starts])
    if len(cont):
        chars -= np.bincount(np.searchsorted(starts, cont, side="right") - 1, minlength=len(starts))
    return chars


def _content_words(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per row, the words holding at least one token: a token opens a new word when whitespace
    separates it from the previous token, or when it is the first of its row."""
    seps = _prefix_sums(data <= 0x20, np.int32)
    opens = np.ones(len(starts), bool)
    opens[1:] = seps[starts[1:]] > seps[ends[:-1]]
    opens[bounds[:-1][bounds[:-1] < bounds[1:]]] = True
    return _per_row(opens, bounds)


def _chunk_signals(
    data: np.ndarray,
    offs: np.ndarray,
    pw: np.ndarray,
    ipw: np.ndarray,
    stop: tuple[np.ndarray, np.ndarray],
    top_ns: tuple[int, ...],
    dup_ns: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Word-level signals for the rows of one chunk (`offs` are the rows' byte offsets into `data`)."""
    doc_starts = offs[:-1][offs[:-1] < offs[1:]]
    values = np.take(_VALUES, data)
    w_starts, w_ends = _runs(data > 0x20, doc_starts)
    t_starts, t_ends = _runs(values != 0, doc_starts)
    w_bounds, t_bounds = np.searchsorted(w_starts, offs), np.searchsorted(t_starts, offs)
    letters = _prefix_sums(_is_letter(data), np.int32)
    t_chars = _token_chars(data, t_starts, t_ends)
    hashes = _token_hashes(values, t_starts, t_ends, pw, ipw)
    words = np.diff(w_bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "q_words": words,
            "q_mean_word_len": _per_row(t_chars, t_bounds) / _content_words(data, t_starts, t_ends, t_bounds),
            "q_alpha_ratio": _per_row(letters[w_ends] > letters[w_starts], w_bounds) / words,
            "q_stop_words": _per_row(_is_stop(hashes, stop), t_bounds),
        }
    out |= _repeated_lines(data, offs, t_starts, t_bounds, hashes, pw, ipw)
    return out | _ngram_fractions(hashes, t_chars, t_bounds, top_ns, dup_ns)


def _repeated_lines(
    data: np.ndarray,
    offs: np.ndarray,
    t_starts: np.ndarray,
    t_bounds: np.ndarray,
    hashes: np.ndarray,
    pw: np.ndarray,
    ipw: np.ndarray,
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
    sums = _prefix_sums(hashes * pw[: len(hashes)], np.uint32)  # polynomial hash of a token range
    new_para = np.ones(len(content), bool)
    new_para[1:] = (content[1:] != content[:-1] + 1) | (row[1:] != row[:-1])
    heads = np.flatnonzero(new_para)
    tails = np.r_[heads[1:], len(content)][: len(heads)] - 1
    p_lo, p_hi = lo[content[heads]], hi[content[tails]]
    line_lo, line_hi = lo[content], hi[content]
    return {
        "q_dup_line_frac": _later_share(row, (sums[line_hi] - sums[line_lo]) * ipw[line_lo], rows),
        "q_dup_para_frac": _later_share(row[heads], (sums[p_hi] - sums[p_lo]) * ipw[p_lo], rows),
    }


def _later_share(row: np.ndarray, hashes: np.ndarray, rows: int) -> np.ndarray:
    """Per row, the share of items whose hash equals an earlier item's in the same row (0 if none)."""
    key = (row.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64)
    key.sort()
    later = key[1:][key[1:] == key[:-1]]
    total = np.bincount(row, minlength=rows)
    copies = np.bincount((later >> np.uint64(32)).astype(np.int64), minlength=rows)
    return copies / np.maximum(total, 1)


def _ngram_fractions(
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
    cc = _prefix_sums(chars, np.int64)
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


_LOW = np.uint64((1 << _INDEX_BITS) - 1)


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


def _chunks(offs: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges of about _CHUNK_BYTES each (at most _CHUNK_ROWS rows, at least one row)."""
    rows = len(offs) - 1
    cum = np.zeros(rows + 1, np.int64)
    np.cumsum(np.minimum(np.diff(offs), MAX_ROW_BYTES), out=cum[1:])
    out, a = [], 0
    while a < rows:
        b = int(np.searchsorted(cum, cum[a] + _CHUNK_BYTES, side="right")) - 1
        b = min(max(b, a + 1), a + _CHUNK_ROWS, rows)
        out.append((a, b))
        a = b
    return out


def _chunk_bytes(data: np.ndarray, offs: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The bytes and local offsets of rows a..b, each row cut to MAX_ROW_BYTES."""
    o = offs[a : b + 1]
    lengths = np.diff(o)
    if lengths.max(initial=0) <= MAX_ROW_BYTES:
        return data[o[0] : o[-1]], o - o[0]
    keep = np.minimum(lengths, MAX_ROW_BYTES)
    local = np.zeros(len(o), np.int64)
    np.cumsum(keep, out=local[1:])
    return np.concatenate([data[s : s + k] for s, k in zip(o[:-1], keep, strict=True)]), local


def _utf8_buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """A string column's UTF-8 bytes and row offsets (one copy into Arrow's contiguous layout)."""
    arr = texts.fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    _, offsets, values = arr.buffers()
    offs = np.frombuffer(offsets, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(values, np.uint8) if values is not None else np.zeros(0, np.uint8)
    return data, offs


def _hash_words(words: list[str]) -> np.ndarray:
    """Token hashes of single-token words, computed exactly like the text's tokens."""
    hashes = []
    for w in words:
        data = np.frombuffer(w.lower().encode(), np.uint8)
        pw, ipw = _powers(max(len(data), 1))
        hashes.append(
            _token_hashes(np.take(_VALUES, data), np.zeros(1, np.int64), np.full(1, len(data)), pw, ipw)[0]
        )
    return np.unique(np.array(hashes, np.uint32))


def word_signals(
    texts: pl.Series, *, stop_words: list[str], top_ns: tuple[int, ...] = (), dup_ns: tuple[int, ...] = ()
) -> pl.DataFrame:
    """Word-level quality signals of each string in `texts`, one row each (see `signal_dtypes`).

    Rows are converted to UTF-8 buffers a block (~64 MiB) at a time, to bound the copies, and each
    block's ~1 MiB chunks are measured on the Polars thread pool's worth of threads (numpy releases
    the GIL).

    >>> word_signals(pl.Series(["the cat and the dog"]), stop_words=["the", "and"])["q_stop_words"][0]
    3
    """
    pw, ipw = _powers(max(_CHUNK_BYTES, MAX_ROW_BYTES))
    stop = _stop_table(_hash_words(stop_words))
    parts: list[dict[str, np.ndarray]] = []
    with ThreadPoolExecutor(max(1, pl.thread_pool_size())) as pool:
        for start, length in _blocks(texts):
            data, offs = _utf8_buffers(texts.slice(start, length))

            def run(
                ab: tuple[int, int], data: np.ndarray = data, offs: np.ndarray = offs
            ) -> dict[str, np.ndarray]:
                chunk, local = _chunk_bytes(data, offs, *ab)
                return _chunk_signals(chunk, local, pw, ipw, stop, top_ns, dup_ns)

            parts += pool.map(run, _chunks(offs))
    dtypes = signal_dtypes(top_ns, dup_ns)
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in dtypes}
    return pl.DataFrame(cols).cast(dtypes).fill_nan(None)


def _blocks(texts: pl.Series) -> list[tuple[int, int]]:
    """(offset, length) row slices of about _BLOCK_BYTES of text each (at least one row)."""
    cum = np.cumsum(texts.str.len_bytes().fill_null(0).to_numpy().astype(np.int64))
    out, a = [], 0
    while a < len(cum):
        b = max(int(np.searchsorted(cum, (cum[a - 1] if a else 0) + _BLOCK_BYTES, side="right")), a + 1)
        out.append((a, b - a))
        a = b
    return out


def signal_dtypes(top_ns: tuple[int, ...], dup_ns: tuple[int, ...]) -> dict[str, pl.DataType]:
    """Names and types of `word_signals`' columns."""
    cols: dict[str, pl.DataType] = {
        "q_words": pl.Int64(),
        "q_mean_word_len": pl.Float64(),
        "q_alpha_ratio": pl.Float64(),
        "q_stop_words": pl.Int64(),
        "q_dup_line_frac": pl.Float64(),
        "q_dup_para_frac": pl.Float64(),
    }
    cols |= {f"q_top_{n}gram_frac": pl.Float64() for n in top_ns}
    cols |= {f"q_dup_{n}gram_frac": pl.Float64() for n in dup_ns}
    return cols


# ---------------------------------------------------------------------------------------------------
# The step: string-level signals in Polars, word-level ones from `word_signals`, then the checks.
# ---------------------------------------------------------------------------------------------------

_CONTENT, _RESPONSE, _PROMPT, _INSTRUCTION = "_q_content", "_q_response", "_q_prompt", "_q_instruction"
_TEMP = (_CONTENT, _RESPONSE, _PROMPT, _INSTRUCTION)


def _last_turn(role: str) -> pl.Expr:
    turns = pl.element().filter(pl.element().struct.field("role") == role).struct.field("content")
    return pl.col(MESSAGES).list.eval(turns).list.last()


def row_parts(columns: tuple[str, ...]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Per row: is it instruction data, its response (or last assistant turn), its prompt (or last
    user turn). Text rows have null response and prompt."""
    has, response, prompt = [], [], []
    pr = [c for c in (PROMPT, RESPONSE) if c in columns]
    if pr:
        has_pr = pl.any_horizontal([pl.col(c).is_not_null() for c in pr])
        has.append(has_pr)
        for col, out in ((RESPONSE, response), (PROMPT, prompt)):
            out.append(pl.when(has_pr).then(pl.col(col).fill_null("") if col in columns else pl.lit("")))
    if MESSAGES in columns:
        has_msgs = pl.col(MESSAGES).is_not_null()
        has.append(has_msgs)
        response.append(pl.when(has_msgs).then(_last_turn("assistant").fill_null("")))
        prompt.append(pl.when(has_msgs).then(_last_turn("user").fill_null("")))
    if not has:
        return pl.lit(False), pl.lit(None, pl.String), pl.lit(None, pl.String)
    return pl.any_horizontal(has), pl.coalesce(response), pl.coalesce(prompt)


def text_signals(content: pl.Expr) -> list[pl.Expr]:
    """The signals Polars string expressions do well: characters, and Gopher's symbols ('#' runs and
    ellipses, counted per run, so a '####' heading counts once)."""
    return [
        content.str.len_chars().cast(pl.Int64).alias("q_chars"),
        (content.str.count_matches("#+") + content.str.count_matches(r"\.\.\.|…")).alias("_q_symbols"),
    ]


def _word_signal_expr(cfg: QualityConfig) -> pl.Expr:
    top_ns, dup_ns = cfg.ngram_sizes()
    fn = partial(word_signals, stop_words=cfg.stop_word_list(), top_ns=top_ns, dup_ns=dup_ns)
    return (
        pl.col(_CONTENT)
        .map_batches(
            lambda s: fn(s).to_struct(),
            return_dtype=pl.Struct(signal_dtypes(top_ns, dup_ns)),
            is_elementwise=True,
        )
        .alias("_q_words")
    )


def _num(col: str) -> pl.Expr:
    return pl.col(col).round(3).cast(pl.String)


def _below(check: Check, col: str, limit: float | None, label: str) -> list[tuple[Check, pl.Expr, pl.Expr]]:
    if limit is None:
        return []
    name = col.removeprefix("q_")
    return [
        (
            check,
            pl.col(col) < limit,
            pl.concat_str(pl.lit(f"{name}="), _num(col), pl.lit(f" < {label}={limit}")),
        )
    ]


def _above(check: Check, col: str, limit: float | None, label: str) -> list[tuple[Check, pl.Expr, pl.Expr]]:
    if limit is None:
        return []
    name = col.removeprefix("q_")
    return [
        (
            check,
            pl.col(col) > limit,
            pl.concat_str(pl.lit(f"{name}="), _num(col), pl.lit(f" > {label}={limit}")),
        )
    ]


def _response_tests(cfg: QualityConfig) -> list[tuple[Check, pl.Expr, pl.Expr]]:
    blank = pl.col(_RESPONSE).str.strip_chars() == ""
    tests = []
    if cfg.reject_empty_response:
        tests.append(("empty_response", blank, pl.lit("response / last assistant turn is blank")))
    if cfg.reject_prompt_equals_response:
        same = _squash(pl.col(_PROMPT)) == _squash(pl.col(_RESPONSE))
        tests.append(
            (
                "prompt_equals_response",
                same & ~blank,
                pl.lit("response equals the prompt (ignoring case and whitespace)"),
            )
        )
    if cfg.boilerplate_patterns:
        pattern = r"(?is)^[\s\"'*_>#-]*(?:" + "|".join(f"(?:{p})" for p in cfg.boilerplate_patterns) + ")"
        size = pl.col(_RESPONSE).str.len_chars()
        short = size <= cfg.boilerplate_max_chars if cfg.boilerplate_max_chars is not None else pl.lit(True)
        found = pl.col(_RESPONSE).str.extract(pattern, 0).str.strip_chars()
        detail = pl.concat_str(
            pl.lit('starts with boilerplate "'),
            found.str.slice(0, 60),
            pl.lit('" ('),
            size.cast(pl.String),
            pl.lit(f" chars <= boilerplate_max_chars={cfg.boilerplate_max_chars})"),
        )
        tests.append(("boilerplate_response", short & pl.col(_RESPONSE).str.contains(pattern), detail))
    return tests


def _squash(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _ngram_tests(cfg: QualityConfig) -> list[tuple[Check, pl.Expr, pl.Expr]]:
    tests = []
    for kind, limits in (("top", cfg.top_ngram_max_fraction), ("dup", cfg.duplicate_ngram_max_fraction)):
        for n, limit in (limits or {}).items():
            label = f"{'top' if kind == 'top' else 'duplicate'}_ngram_max_fraction[{n}]"
            tests += _above("repeated_ngrams", f"q_{kind}_{n}gram_frac", limit, label)
    big_enough = pl.col("q_words") >= cfg.ngram_min_words
    return [(check, fail & big_enough, detail) for check, fail, detail in tests]


def checks(cfg: QualityConfig) -> list[tuple[Check, pl.Expr, pl.Expr]]:
    """(check, failed?, detail) for every enabled threshold, in CHECK_ORDER."""
    tests = [
        *_response_tests(cfg),
        *_below("too_short", "q_chars", cfg.min_chars, "min_chars"),
        *_below("too_short", "q_words", cfg.min_words, "min_words"),
        *_above("too_long", "q_chars", cfg.max_chars, "max_chars"),
        *_above("too_long", "q_words", cfg.max_words, "max_words"),
        *_above(
            "duplicate_lines",
            "q_dup_line_frac",
            cfg.max_duplicate_line_fraction,
            "max_duplicate_line_fraction",
        ),
        *_above(
            "duplicate_paragraphs",
            "q_dup_para_frac",
            cfg.max_duplicate_paragraph_fraction,
            "max_duplicate_paragraph_fraction",
        ),
        *_ngram_tests(cfg),
        *_below("low_mean_word_length", "q_mean_word_len", cfg.min_mean_word_length, "min_mean_word_length"),
        *_above("high_mean_word_length", "q_mean_word_len", cfg.max_mean_word_length, "max_mean_word_length"),
        *_above("high_symbol_ratio", "q_symbol_ratio", cfg.max_symbol_word_ratio, "max_symbol_word_ratio"),
        *_below("low_alpha_ratio", "q_alpha_ratio", cfg.min_alpha_word_ratio, "min_alpha_word_ratio"),
        *_below("no_stop_words", "q_stop_words", cfg.min_stop_words, "min_stop_words"),
    ]
    return sorted(tests, key=lambda t: CHECK_ORDER.index(t[0]))


def _applies(check: Check, cfg: QualityConfig) -> pl.Expr:
    """Whether a check runs on a row, from the row's kind and the skip lists."""
    on_instruction = check not in cfg.instruction_skip
    on_text = check not in cfg.text_skip and check not in RESPONSE_CHECKS
    return pl.when(pl.col(_INSTRUCTION)).then(pl.lit(on_instruction)).otherwise(pl.lit(on_text))


def decisions(cfg: QualityConfig) -> tuple[pl.Expr, pl.Expr]:
    """`_reason` (the first failed check in CHECK_ORDER) and `_detail` (every failed test)."""
    failed = [
        (check, (_applies(check, cfg) & fail).fill_null(False), detail) for check, fail, detail in checks(cfg)
    ]
    if not failed:
        return pl.lit(None, pl.String).alias(REASON), pl.lit(None, pl.String).alias(DETAIL)
    reason = pl.coalesce([pl.when(f).then(pl.lit(check)) for check, f, _ in failed])
    detail = pl.concat_str([pl.when(f).then(d) for _, f, d in failed], separator="; ", ignore_nulls=True)
    return reason.alias(REASON), pl.when(reason.is_not_null()).then(detail).alias(DETAIL)


# Every column this step may have written before (any n), so a rerun replaces them all.
_OWN_SIGNALS = cs.matches(
    r"^q_(?:chars|words|mean_word_len|alpha_ratio|symbol_ratio|stop_words|dup_line_frac|dup_para_frac"
    r"|(?:top|dup)_\d+gram_frac)$"
)


def signal_columns(cfg: QualityConfig) -> list[str]:
    """Names of the `q_*` columns the step adds."""
    words = list(signal_dtypes(*cfg.ngram_sizes()))
    return ["q_chars", *words[:3], "q_symbol_ratio", *words[3:]]


@step("quality", QualityConfig, is_filter=True)
def quality(lf: pl.LazyFrame, cfg: QualityConfig, ctx: StepContext) -> pl.LazyFrame:
    """Gopher/C4-style quality signals as `q_*` columns; rows failing a threshold get a reason."""
    is_instruction, response, prompt = row_parts(ctx.content_columns)
    lf = lf.drop(_OWN_SIGNALS).with_columns(
        content_text(ctx.content_columns).alias(_CONTENT),
        response.alias(_RESPONSE),
        prompt.alias(_PROMPT),
        is_instruction.alias(_INSTRUCTION),
    )
    lf = lf.with_columns(*text_signals(pl.col(_CONTENT)), _word_signal_expr(cfg)).unnest("_q_words")
    symbols = pl.col("_q_symbols") / pl.when(pl.col("q_words") > 0).then(pl.col("q_words"))
    lf = lf.with_columns(symbols.fill_null(0.0).alias("q_symbol_ratio"))
    lf = lf.with_columns(*decisions(cfg))
    return lf.drop(*_TEMP, "_q_symbols").select(pl.all().exclude(signal_columns(cfg)), *signal_columns(cfg))
