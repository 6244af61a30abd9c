"""Unicode, HTML-remnant, quote and whitespace normalisation of every content column."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.steps.base import StepContext, step
from assay.schema import MESSAGES, PROMPT, RESPONSE, TEXT
from assay.store.arrowtext import utf8_buffers

# C0/C1 control characters except tab and newline: invisible, and they break tokenisers and JSON tools.
_CONTROL = r"[\x{00}-\x{08}\x{0B}\x{0C}\x{0E}-\x{1F}\x{7F}-\x{9F}]"
# Horizontal space including no-break and the typographic spaces; newlines are handled separately.
_SPACE_CHARS = r"\t\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}"
# A run of two or more spaces, or any single space character other than a plain space.
_HSPACE = rf"[ {_SPACE_CHARS}]{{2,}}|[{_SPACE_CHARS}]"
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


Fix = Callable[[pl.Series], pl.Series]
_UNICODE_SPACES = ["\u00a0", "\u1680", *map(chr, range(0x2000, 0x200B)), "\u202f", "\u205f", "\u3000"]
_C1 = [chr(c) for c in range(0x7F, 0xA0)]


def _byte_flags(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row: any non-ASCII byte; any ASCII control byte (tab, newline and CR aside).

    A few numpy comparisons over the UTF-8 buffer (~0.1 s per 100 MB); a regex scan costs
    ~0.3 s per pattern, so the costly checks then run only on rows that can need them.
    """
    n = col.len()
    base, data = utf8_buffers(col)
    if n == 0 or base[-1] == 0:
        return np.zeros(n, bool), np.zeros(n, bool)
    raw = np.frombuffer(data, dtype=np.uint8)

    def rows(positions: np.ndarray) -> np.ndarray:
        out = np.zeros(n, bool)
        out[np.searchsorted(base, positions, side="right") - 1] = True
        return out

    low = np.flatnonzero(raw < 0x20)
    low = low[~np.isin(raw[low], (0x09, 0x0A, 0x0D))]
    return rows(np.flatnonzero(raw >= 0x80)), rows(np.concatenate([low, np.flatnonzero(raw == 0x7F)]))


def _within(col: pl.Series, mask: pl.Series, test: Callable[[pl.Series], pl.Series]) -> pl.Series:
    """A row test evaluated only on the rows of `mask` (False elsewhere)."""
    idx = mask.fill_null(False).arg_true()
    out = np.zeros(col.len(), bool)
    if idx.len():
        out[idx.to_numpy()] = test(col.gather(idx)).fill_null(False).to_numpy()
    return pl.Series(out)


def _where(col: pl.Series, mask: pl.Series | np.ndarray, fix: Fix) -> pl.Series:
    """Apply a fix only to the rows that need it."""
    idx = pl.Series(mask).fill_null(False).arg_true()
    return col if idx.len() == 0 else col.clone().scatter(idx, fix(col.gather(idx)))  # scatter writes in place


def _nfc(form: str) -> Fix:
    def fix(s: pl.Series) -> pl.Series:
        # Python's quick check is far cheaper than normalising; most non-ASCII text is already NFC.
        todo = [not unicodedata.is_normalized(form, v) for v in s.fill_null("").to_list()]
        return _where(s, np.array(todo, dtype=bool), lambda t: t.str.normalize(form))

    return fix


def _unescape(s: pl.Series) -> pl.Series:
    return pl.Series(s.name, [html.unescape(v) for v in s.to_list()], dtype=pl.String)


def _fix_spacing(s: pl.Series) -> pl.Series:
    return (
        s.str.replace_all(_HSPACE, " ")
        .str.replace_all(r"(?m) +$", "")
        .str.replace_all(r"(?m)^ +\n", "\n")
        .str.replace_all(r"\n{3,}", "\n\n")
        .str.strip_chars()
    )


def _needs_spacing(col: pl.Series, special: pl.Series) -> pl.Series:
    needs = col.str.head(1).is_in([" ", "\n", "\t"]) | col.str.tail(1).is_in([" ", "\n", "\t"])
    for literal in ("\t", "  ", " \n", "\n ", "\n\n\n"):  # literal scans are memchr-fast
        needs = needs | col.str.contains(literal, literal=True)
    return needs | _within(col, special, lambda t: t.str.contains_any(_UNICODE_SPACES))


def normalize_series(col: pl.Series, cfg: NormalizeConfig) -> pl.Series:
    """Every enabled fix, each on just the rows that need it, in a fixed order."""
    nonascii, ascii_ctrl = _byte_flags(col)
    special = pl.Series(nonascii)
    if cfg.unicode_form != "none":
        col = _where(col, special, _nfc(cfg.unicode_form))
    col = _where(col, col.str.contains("\r", literal=True), lambda s: s.str.replace_all("\r\n?", "\n"))
    if cfg.html_entities:
        entity = _within(col, col.str.contains("&", literal=True), lambda t: t.str.contains(_ENTITY))
        col = _where(col, entity, _unescape)
        special = special | entity.fill_null(False)
    if cfg.html_tags:
        col = _where(col, col.str.contains("<", literal=True), lambda s: s.str.replace_all(_BREAK_TAG, "\n").str.replace_all(_TAG, ""))
    if cfg.smart_quotes:
        quoted = _within(col, special, lambda t: t.str.contains_any(list(_SMART)))
        col = _where(col, quoted, lambda s: s.str.replace_many(list(_SMART), list(_SMART.values())))
    if cfg.strip_control:
        control = pl.Series(ascii_ctrl) | _within(col, special, lambda t: t.str.contains_any(_C1))
        col = _where(col, control, lambda s: s.str.replace_all(_CONTROL, ""))
    if cfg.collapse_whitespace:
        col = _where(col, _needs_spacing(col, special), _fix_spacing)
    return col


def normalize_text(expr: pl.Expr, cfg: NormalizeConfig) -> pl.Expr:
    """The normalisation as one string expression (also used inside messages' content)."""
    return expr.map_batches(lambda s: normalize_series(s, cfg), return_dtype=pl.String)


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
