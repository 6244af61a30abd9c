"""Word-level quality signals (`word_signals`): vectorised numpy over UTF-8 bytes, ~1 MiB of rows at a time.

Words and tokens are the whitespace words and punctuation tokens of `assay.curate.words`: words
give the word count and the alphabetic-word ratio, tokens give stop words, mean word length and
the repetition signals (`repetition`). Only a row's first MAX_ROW_BYTES (1 MiB) are measured:
such rows are far above the default max_chars anyway.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from assay.curate.steps.quality.repetition import ngram_fractions, repeated_lines
from assay.curate.words import (
    Powers,
    char_counts,
    powers,
    prefix_sums,
    punctuation_token_hashes,
    punctuation_tokens,
    utf8_buffers,
    whitespace_words,
)

MAX_ROW_BYTES = 1 << 20
_CHUNK_BYTES, _CHUNK_ROWS = 1 << 20, 1 << 14  # ~1 MiB of rows keeps the temporaries in cache
_BLOCK_BYTES = 1 << 26
StopTable = tuple[np.ndarray, np.ndarray]


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
    pw = powers(max(_CHUNK_BYTES, MAX_ROW_BYTES))
    stop = _stop_table(punctuation_token_hashes(stop_words))
    parts: list[dict[str, np.ndarray]] = []
    with ThreadPoolExecutor(max(1, pl.thread_pool_size())) as pool:
        for start, length in _blocks(texts):
            data, offs = utf8_buffers(texts.slice(start, length).fill_null(""))

            def run(
                ab: tuple[int, int], data: np.ndarray = data, offs: np.ndarray = offs
            ) -> dict[str, np.ndarray]:
                chunk, local = _chunk_bytes(data, offs, *ab)
                return _chunk_signals(chunk, local, pw, stop, top_ns, dup_ns)

            parts += pool.map(run, _chunks(offs))
    dtypes = signal_dtypes(top_ns, dup_ns)
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in dtypes}
    return pl.DataFrame(cols).cast(dtypes).fill_nan(None)


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


def _chunk_signals(
    data: np.ndarray,
    offs: np.ndarray,
    pw: Powers,
    stop: StopTable,
    top_ns: tuple[int, ...],
    dup_ns: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Word-level signals for the rows of one chunk (`offs` are the rows' byte offsets into `data`)."""
    row_starts = offs[:-1][offs[:-1] < offs[1:]]
    w_starts, w_ends = whitespace_words(data, row_starts)
    t_starts, t_ends, hashes = punctuation_tokens(data, row_starts, pw)
    w_bounds, t_bounds = np.searchsorted(w_starts, offs), np.searchsorted(t_starts, offs)
    letters = prefix_sums(_is_letter(data), np.int32)
    t_chars = char_counts(data, t_starts, t_ends)
    words = np.diff(w_bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "q_words": words,
            "q_mean_word_len": _per_row(t_chars, t_bounds) / _content_words(data, t_starts, t_ends, t_bounds),
            "q_alpha_ratio": _per_row(letters[w_ends] > letters[w_starts], w_bounds) / words,
            "q_stop_words": _per_row(_is_stop(hashes, stop), t_bounds),
        }
    out |= repeated_lines(data, offs, t_starts, t_bounds, hashes, pw)
    return out | ngram_fractions(hashes, t_chars, t_bounds, top_ns, dup_ns)


def _is_letter(data: np.ndarray) -> np.ndarray:
    """ASCII letters, and lead bytes of non-ASCII characters outside U+0080-00BF and U+2000-2FFF
    (Latin-1 signs, punctuation, arrows, maths, box drawing), taken as letters."""
    return (((data | 0x20) - 0x61) < 26) | ((data >= 0xC3) & (data <= 0xF4) & (data != 0xE2))


def _content_words(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per row, the words holding at least one token: a token opens a new word when whitespace
    separates it from the previous token, or when it is the first of its row."""
    seps = prefix_sums(data <= 0x20, np.int32)
    opens = np.ones(len(starts), bool)
    opens[1:] = seps[starts[1:]] > seps[ends[:-1]]
    opens[bounds[:-1][bounds[:-1] < bounds[1:]]] = True
    return _per_row(opens, bounds)


def _per_row(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums of `values` over index ranges [bounds[i], bounds[i+1]) (empty ranges give 0)."""
    cs = np.zeros(len(values) + 1, np.float64 if values.dtype.kind == "f" else np.int64)
    np.cumsum(values, out=cs[1:])
    return cs[bounds[1:]] - cs[bounds[:-1]]


def _stop_table(stop: np.ndarray) -> StopTable:
    """A direct-mapped table of the stop-word hashes, indexed by their low bits (grown until no two
    share a slot), so membership is one lookup and one comparison per token."""
    bits = 12
    while len(np.unique(stop & np.uint32((1 << bits) - 1))) < len(stop):
        bits += 1
    slots, used = np.zeros(1 << bits, np.uint32), np.zeros(1 << bits, bool)
    slots[stop & np.uint32((1 << bits) - 1)] = stop
    used[stop & np.uint32((1 << bits) - 1)] = True
    return slots, used


def _is_stop(hashes: np.ndarray, table: StopTable) -> np.ndarray:
    slots, used = table
    slot = hashes & np.uint32(len(slots) - 1)
    return np.take(used, slot) & (np.take(slots, slot) == hashes)


def _blocks(texts: pl.Series) -> list[tuple[int, int]]:
    """(offset, length) row slices of about _BLOCK_BYTES of text each (at least one row)."""
    cum = np.cumsum(texts.str.len_bytes().fill_null(0).to_numpy().astype(np.int64))
    out, a = [], 0
    while a < len(cum):
        b = max(int(np.searchsorted(cum, (cum[a - 1] if a else 0) + _BLOCK_BYTES, side="right")), a + 1)
        out.append((a, b - a))
        a = b
    return out


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
