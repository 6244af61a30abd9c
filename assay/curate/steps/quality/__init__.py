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
slower on 100k 1 KB rows. Words and tokens are the whitespace words and punctuation tokens defined
in `assay.curate.words`.

Modules: `config` (options, check names and order), `signals` (word-level signals), `repetition`
(duplicate lines, paragraphs and n-grams), `checks` (the reject rules), `step` (the registered step).
"""

from assay.curate.steps.quality.checks import checks, decisions
from assay.curate.steps.quality.config import (
    CHECK_ORDER,
    DEFAULT_BOILERPLATE,
    MAX_NGRAM,
    RESPONSE_CHECKS,
    Check,
    QualityConfig,
)
from assay.curate.steps.quality.signals import MAX_ROW_BYTES, signal_dtypes, word_signals
from assay.curate.steps.quality.step import quality, row_parts, signal_columns, text_signals

__all__ = [
    "CHECK_ORDER",
    "DEFAULT_BOILERPLATE",
    "MAX_NGRAM",
    "MAX_ROW_BYTES",
    "RESPONSE_CHECKS",
    "Check",
    "QualityConfig",
    "checks",
    "decisions",
    "quality",
    "row_parts",
    "signal_columns",
    "signal_dtypes",
    "text_signals",
    "word_signals",
]
