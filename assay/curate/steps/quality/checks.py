"""The `quality` step's reject rules: each enabled threshold as a (check, failed?, detail) test.

Tests read the `q_*` signal columns and the step's temporary row-part columns (`RESPONSE_PART`,
`PROMPT_PART`, `IS_INSTRUCTION`); `decisions` turns them into the row's `_reason` and `_detail`.
"""

from __future__ import annotations

import polars as pl

from assay.curate.steps.base import DETAIL, REASON
from assay.curate.steps.quality.config import CHECK_ORDER, RESPONSE_CHECKS, Check, QualityConfig

# The step's temporary columns: the row's response (or last assistant turn), its prompt (or last
# user turn), and whether it is instruction data.
RESPONSE_PART, PROMPT_PART, IS_INSTRUCTION = "_q_response", "_q_prompt", "_q_instruction"
Test = tuple[Check, pl.Expr, pl.Expr]


def checks(cfg: QualityConfig) -> list[Test]:
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
    return pl.when(pl.col(IS_INSTRUCTION)).then(pl.lit(on_instruction)).otherwise(pl.lit(on_text))


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


def _num(col: str) -> pl.Expr:
    return pl.col(col).round(3).cast(pl.String)


def _below(check: Check, col: str, limit: float | None, label: str) -> list[Test]:
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


def _above(check: Check, col: str, limit: float | None, label: str) -> list[Test]:
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


def _response_tests(cfg: QualityConfig) -> list[Test]:
    blank = pl.col(RESPONSE_PART).str.strip_chars() == ""
    tests = []
    if cfg.reject_empty_response:
        tests.append(("empty_response", blank, pl.lit("response / last assistant turn is blank")))
    if cfg.reject_prompt_equals_response:
        same = _squash(pl.col(PROMPT_PART)) == _squash(pl.col(RESPONSE_PART))
        tests.append(
            (
                "prompt_equals_response",
                same & ~blank,
                pl.lit("response equals the prompt (ignoring case and whitespace)"),
            )
        )
    if cfg.boilerplate_patterns:
        pattern = r"(?is)^[\s\"'*_>#-]*(?:" + "|".join(f"(?:{p})" for p in cfg.boilerplate_patterns) + ")"
        size = pl.col(RESPONSE_PART).str.len_chars()
        short = size <= cfg.boilerplate_max_chars if cfg.boilerplate_max_chars is not None else pl.lit(True)
        found = pl.col(RESPONSE_PART).str.extract(pattern, 0).str.strip_chars()
        detail = pl.concat_str(
            pl.lit('starts with boilerplate "'),
            found.str.slice(0, 60),
            pl.lit('" ('),
            size.cast(pl.String),
            pl.lit(f" chars <= boilerplate_max_chars={cfg.boilerplate_max_chars})"),
        )
        tests.append(("boilerplate_response", short & pl.col(RESPONSE_PART).str.contains(pattern), detail))
    return tests


def _squash(text: pl.Expr) -> pl.Expr:
    return text.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _ngram_tests(cfg: QualityConfig) -> list[Test]:
    tests = []
    for kind, limits in (("top", cfg.top_ngram_max_fraction), ("dup", cfg.duplicate_ngram_max_fraction)):
        for n, limit in (limits or {}).items():
            label = f"{'top' if kind == 'top' else 'duplicate'}_ngram_max_fraction[{n}]"
            tests += _above("repeated_ngrams", f"q_{kind}_{n}gram_frac", limit, label)
    big_enough = pl.col("q_words") >= cfg.ngram_min_words
    return [(check, fail & big_enough, detail) for check, fail, detail in tests]
