"""Unicode, HTML-remnant, quote and whitespace normalisation of every content column."""

from __future__ import annotations

import html
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.schema import MESSAGES, PROMPT, RESPONSE, TEXT
from assay.curate.steps.base import StepContext, step

# C0/C1 control characters except tab and newline: invisible, and they break tokenisers and JSON tools.
_CONTROL = r"[\x{00}-\x{08}\x{0B}\x{0C}\x{0E}-\x{1F}\x{7F}-\x{9F}]"
# Horizontal space including no-break and the typographic spaces; newlines are handled separately.
_HSPACE = r"[ \t\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]+"
_ENTITY = r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# Tags of markup that leaked from scraped pages; `<br>` and block ends become line breaks.
_BREAK_TAG = r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>"
_TAG = r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>"
_SMART = {
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2032": "'",
    "\u2033": '"',
}


class NormalizeConfig(BaseModel):
    """Options of the `normalize` step."""

    model_config = ConfigDict(extra="forbid")

    unicode_form: Literal["NFC", "NFKC", "none"] = Field(
        "NFC", description="Unicode normal form (NFKC also folds compatibility characters such as ligatures)."
    )
    html_entities: bool = Field(
        True, description="Decode leftover HTML entities (&amp;, &#39;, &nbsp;, ...)."
    )
    html_tags: bool = Field(
        False,
        description="Remove HTML tags (<br> and block ends become newlines). Off by default: instruction data about web code needs its tags.",
    )
    smart_quotes: bool = Field(
        True, description="Replace typographic quotes and guillemets with ASCII quotes."
    )
    strip_control: bool = Field(True, description="Remove control characters other than tab and newline.")
    collapse_whitespace: bool = Field(
        True,
        description="Collapse runs of spaces/tabs to one space, trim line ends, keep at most one blank line, strip the ends.",
    )


def normalize_text(expr: pl.Expr, cfg: NormalizeConfig) -> pl.Expr:
    """The normalisation as one string expression (also used for messages' content)."""
    if cfg.unicode_form != "none":
        expr = expr.str.normalize(cfg.unicode_form)
    expr = expr.str.replace_all("\r\n?", "\n")
    if cfg.html_entities:
        expr = expr.map_batches(unescape_entities, return_dtype=pl.String)
    if cfg.html_tags:
        expr = expr.str.replace_all(_BREAK_TAG, "\n").str.replace_all(_TAG, "")
    if cfg.smart_quotes:
        expr = expr.str.replace_many(list(_SMART), list(_SMART.values()))
    if cfg.strip_control:
        expr = expr.str.replace_all(_CONTROL, "")
    if cfg.collapse_whitespace:
        expr = (
            expr.str.replace_all(_HSPACE, " ")
            .str.replace_all(r"(?m) +$", "")
            .str.replace_all(r"(?m)^ +\n", "\n")
            .str.replace_all(r"\n{3,}", "\n\n")
            .str.strip_chars()
        )
    return expr


def unescape_entities(col: pl.Series) -> pl.Series:
    """html.unescape on just the rows that contain an entity (rare), leaving the rest untouched."""
    idx = col.str.contains(_ENTITY).fill_null(False).arg_true()
    if idx.len() == 0:
        return col
    return col.scatter(idx, [html.unescape(v) for v in col.gather(idx).to_list()])


@step("normalize", NormalizeConfig)
def normalize(lf: pl.LazyFrame, cfg: NormalizeConfig, ctx: StepContext) -> pl.LazyFrame:
    """Unicode normal form, control characters and whitespace in every content column."""
    exprs = [
        normalize_text(pl.col(c), cfg).alias(c) for c in (PROMPT, RESPONSE, TEXT) if c in ctx.content_columns
    ]
    if MESSAGES in ctx.content_columns:
        content = normalize_text(pl.field("content"), cfg)
        exprs.append(pl.col(MESSAGES).list.eval(pl.element().struct.with_fields(content)))
    return lf.with_columns(exprs) if exprs else lf
