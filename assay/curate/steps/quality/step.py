"""The `quality` step itself: row parts and string signals in Polars, word-level signals from
`word_signals`, then the reject rules of `checks`."""

from __future__ import annotations

from functools import partial

import polars as pl
import polars.selectors as cs

from assay.curate.steps.base import StepContext, step
from assay.curate.steps.quality.checks import IS_INSTRUCTION, PROMPT_PART, RESPONSE_PART, decisions
from assay.curate.steps.quality.config import QualityConfig
from assay.curate.steps.quality.signals import signal_dtypes, word_signals
from assay.schema import MESSAGES, PROMPT, RESPONSE, content_text

_CONTENT = "_q_content"
_TEMP = (_CONTENT, RESPONSE_PART, PROMPT_PART, IS_INSTRUCTION)
# Every column this step may have written before (any n), so a rerun replaces them all.
_OWN_SIGNALS = cs.matches(
    r"^q_(?:chars|words|mean_word_len|alpha_ratio|symbol_ratio|stop_words|dup_line_frac|dup_para_frac"
    r"|(?:top|dup)_\d+gram_frac)$"
)


@step("quality", QualityConfig, is_filter=True, rewrites_content=False)
def quality(lf: pl.LazyFrame, cfg: QualityConfig, ctx: StepContext) -> pl.LazyFrame:
    """Gopher/C4-style quality signals as `q_*` columns; rows failing a threshold get a reason."""
    is_instruction, response, prompt = row_parts(ctx.content_columns)
    lf = lf.drop(_OWN_SIGNALS).with_columns(
        content_text(ctx.content_columns).alias(_CONTENT),
        response.alias(RESPONSE_PART),
        prompt.alias(PROMPT_PART),
        is_instruction.alias(IS_INSTRUCTION),
    )
    lf = lf.with_columns(*text_signals(pl.col(_CONTENT)), _word_signal_expr(cfg)).unnest("_q_words")
    symbols = pl.col("_q_symbols") / pl.when(pl.col("q_words") > 0).then(pl.col("q_words"))
    lf = lf.with_columns(symbols.fill_null(0.0).alias("q_symbol_ratio"))
    lf = lf.with_columns(*decisions(cfg))
    return lf.drop(*_TEMP, "_q_symbols").select(pl.all().exclude(signal_columns(cfg)), *signal_columns(cfg))


def signal_columns(cfg: QualityConfig) -> list[str]:
    """Names of the `q_*` columns the step adds."""
    words = list(signal_dtypes(*cfg.ngram_sizes()))
    return ["q_chars", *words[:3], "q_symbol_ratio", *words[3:]]


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
