"""Chats stored as JSON text (CSV cells, some parquet columns): parsed, then checked by the content rules."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from assay import schema as S
from assay.curate.readers.mapping import SHAREGPT_ROLES, Mapping
from assay.curate.readers.quarantine import with_errors
from assay.curate.readers.rules import MESSAGE_KEYS, label, message_keys_of, messages_error


def parse_message_strings(df: pl.DataFrame, m: Mapping) -> pl.DataFrame:
    """A chat column stored as JSON text (CSV, some parquet) is parsed and checked row by row."""
    column = m.fields.get(S.MESSAGES)
    if column is None or df.schema.get(column) != pl.String:
        return df
    values, errors = [], []
    for text in df.get_column(column).to_list():
        value, error = message_from_text(text, column)
        values.append(value)
        errors.append(error)
    return with_errors(df.with_columns(pl.Series(column, values, dtype=S.MESSAGE_DTYPE)), errors)


def message_from_text(text: str | None, column: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """A chat stored as JSON text (CSV, some parquet): (messages, None) or (None, error)."""
    if text is None:
        return None, None  # reported as missing by the vectorised check
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"field {label(column, S.MESSAGES)} is not valid JSON: {exc.msg} at column {exc.colno}"
    error = messages_error(value, column)
    if error:
        return None, error
    return normalise_messages(value, message_keys_of(value) or MESSAGE_KEYS[0]), None


def normalise_messages(value: list[dict[str, Any]], keys: tuple[str, str]) -> list[dict[str, str]]:
    """Valid messages as {role, content} strings; ShareGPT speakers become chat roles."""
    out = []
    for message in value:
        role, content = str(message[keys[0]]), str(message[keys[1]])
        if keys[0] == "from":
            role = SHAREGPT_ROLES.get(role.lower(), role.lower())
        out.append({"role": role, "content": content})
    return out
