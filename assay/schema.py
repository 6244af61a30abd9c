"""The canonical row schema (DESIGN §4) and the content shapes readers map onto it."""

from __future__ import annotations

import polars as pl

ID, SOURCE, SOURCE_LINE = "id", "source", "source_line"
PROMPT, RESPONSE, MESSAGES, TEXT = "prompt", "response", "messages", "text"
SPLIT, DUP_CLUSTER = "split", "dup_cluster"

MESSAGE_DTYPE = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))

# Canonical content columns and their types; a version carries the ones its shape uses.
CONTENT_DTYPES: dict[str, pl.DataType] = {
    PROMPT: pl.String(),
    RESPONSE: pl.String(),
    MESSAGES: MESSAGE_DTYPE,
    TEXT: pl.String(),
}

# Columns a reject/quarantine frame always has besides the row's own columns.
REJECT_STEP, REJECT_REASON, REJECT_DETAIL = "step", "reason", "detail"


def content_columns(schema: pl.Schema | dict) -> tuple[str, ...]:
    """The canonical content columns a frame carries, in canonical order."""
    return tuple(c for c in CONTENT_DTYPES if c in schema)


def messages_text(col: str = MESSAGES) -> pl.Expr:
    """A chat rendered as 'role: content' lines, for hashing, dedup and quality signals."""
    turn = (
        pl.element().struct.field("role") + pl.lit(": ") + pl.element().struct.field("content").fill_null("")
    )
    return pl.col(col).list.eval(turn).list.join("\n")


def content_text(columns: tuple[str, ...]) -> pl.Expr:
    """One string per row with all of its content, whatever shape the row has."""
    parts: list[pl.Expr] = []
    if PROMPT in columns or RESPONSE in columns:
        pr = [pl.col(c).fill_null("") for c in (PROMPT, RESPONSE) if c in columns]
        both = pl.concat_str(pr, separator="\n\n") if len(pr) > 1 else pr[0]
        has = pl.any_horizontal([pl.col(c).is_not_null() for c in (PROMPT, RESPONSE) if c in columns])
        parts.append(pl.when(has).then(both))
    if MESSAGES in columns:
        parts.append(messages_text())
    if TEXT in columns:
        parts.append(pl.col(TEXT))
    return pl.coalesce(parts).fill_null("") if parts else pl.lit("")


# A version's rejects: the removed row's own columns plus these (and `detail`, `duplicate_of` where known).
REJECT_SCHEMA: dict[str, pl.DataType] = {REJECT_STEP: pl.String(), REJECT_REASON: pl.String()}

# A version's quarantine: input lines that could not become rows, with where they came from and why.
QUARANTINE_SCHEMA = pl.Schema({SOURCE: pl.String(), SOURCE_LINE: pl.Int64(), "error": pl.String(), "raw": pl.String()})
