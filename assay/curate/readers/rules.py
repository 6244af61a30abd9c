"""The content rules: when a row's content is usable, and the message that says why not.

Rows are checked in two ways that must agree: polars expressions over typed columns (the fast
path, for whole blocks) and plain Python over parsed JSON objects (for blocks polars cannot
type, values polars turned into text, and chats stored as JSON text, see `chat_text`). Both
live here, side by side, rule by rule, and `tests/curate/test_content_rules.py` checks that
they agree on random rows.

The rules, per content field:
- text (prompt, response, text): null is missing; strings and numbers are text; booleans,
  objects and arrays are not.
- messages: null is missing; then not a list; then an empty list; then messages without a
  role/content (or ShareGPT from/value) pair; then a role, then a content that is not text;
  then a message with a null role or content. A message missing one key of the pair counts
  as null, as it does once polars has typed the list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from assay import schema as S
from assay.curate.readers.mapping import SHAREGPT_ROLES, Mapping
from assay.curate.readers.quarantine import with_errors

MESSAGE_KEYS = (("role", "content"), ("from", "value"))


# --------------------------------------------------------------------------- messages


def label(column: str, canonical: str) -> str:
    return f"`{column}`" if column == canonical else f"`{column}` ({canonical})"


def missing(column: str, canonical: str) -> str:
    return f"field {label(column, canonical)} is missing or null"


def not_text(column: str, canonical: str, found: str) -> str:
    return f"field {label(column, canonical)} is not text (found {found})"


def not_messages(column: str, found: str) -> str:
    return f"field {label(column, S.MESSAGES)} is not a list of {{role, content}} messages (found {found})"


def empty_messages(column: str) -> str:
    return f"field {label(column, S.MESSAGES)} is empty"


def no_message_keys(column: str) -> str:
    return f"field {label(column, S.MESSAGES)} has a message without role and content (or from and value)"


def message_not_text(column: str, key: str, found: str) -> str:
    return f"field {label(column, S.MESSAGES)} has a message whose {key} is not text (found {found})"


def null_in_message(column: str) -> str:
    return f"field {label(column, S.MESSAGES)} has a message with a null role or content"


def json_kind(value: Any) -> str:
    """The JSON kind of a parsed value, as messages name it."""
    kinds = ((type(None), "null"), (bool, "boolean"), (dict, "object"), (list, "array"), (str, "string"))
    return next((name for typ, name in kinds if isinstance(value, typ)), "number")


def dtype_kind(dtype: pl.DataType) -> str:
    """The JSON kind a polars type was read from (`json_kind`'s names); other types by name."""
    if isinstance(dtype, pl.Struct):
        return "object"
    if isinstance(dtype, pl.List | pl.Array):
        return "array"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "number"
    return {pl.String: "string", pl.Null: "null"}.get(dtype, str(dtype))  # type: ignore[call-overload]


# --------------------------------------------------------------------------- Python path


def content_error(obj: dict[str, Any], m: Mapping) -> str | None:
    """The content error of one parsed JSON object; a chat stored as text is checked once parsed."""
    for canonical, column in m.fields.items():
        value = obj.get(column)
        if canonical == S.MESSAGES:
            error = messages_error(value, column) if not isinstance(value, str) else None
        else:
            error = text_error(value, column, canonical, required=True)
        if error:
            return error
    if m.extra_input:
        return text_error(obj.get(m.extra_input), m.extra_input, S.PROMPT, required=False)
    return None


def text_error(value: Any, column: str, canonical: str, *, required: bool) -> str | None:
    if value is None:
        return missing(column, canonical) if required else None
    if not _is_text_value(value):
        return not_text(column, canonical, json_kind(value))
    return None


def _is_text_value(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, str | int | float)


def messages_error(value: Any, column: str) -> str | None:
    if value is None:
        return missing(column, S.MESSAGES)
    if not isinstance(value, list):
        return not_messages(column, json_kind(value))
    if not value:
        return empty_messages(column)
    present = [message for message in value if message is not None]
    if any(not isinstance(message, dict) for message in present):
        return not_messages(column, "array")
    if not present:
        return null_in_message(column)
    keys = message_keys_of(present)
    if keys is None:
        return no_message_keys(column)
    return _message_values_error(present, keys, column) or (
        null_in_message(column) if len(present) < len(value) else None
    )


def message_keys_of(messages: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The (role, content) keys a list of messages uses, from the keys any of them has."""
    names = {key for message in messages for key in message}
    return next((keys for keys in MESSAGE_KEYS if set(keys) <= names), None)


def _message_values_error(messages: list[dict[str, Any]], keys: tuple[str, str], column: str) -> str | None:
    for key in keys:
        bad = next((m[key] for m in messages if m.get(key) is not None and not _is_text_value(m[key])), None)
        if bad is not None:
            return message_not_text(column, key, json_kind(bad))
    if any(m.get(key) is None for m in messages for key in keys):
        return null_in_message(column)
    return None


# --------------------------------------------------------------------------- expression path


def content_exprs(schema: pl.Schema, m: Mapping) -> tuple[dict[str, pl.Expr], list[pl.Expr]]:
    """Canonical value expressions and per-row error expressions for one mapping."""
    values: dict[str, pl.Expr] = {}
    errors: list[pl.Expr] = []
    for canonical, column in m.fields.items():
        if canonical == S.MESSAGES:
            values[canonical], error = messages_exprs(schema, column)
        else:
            values[canonical], error = text_exprs(schema, column, canonical)
        errors.append(error)
    if m.extra_input:
        extra, extra_error = text_exprs(schema, m.extra_input, S.PROMPT, required=False)
        prompt = values[S.PROMPT]
        filled = extra.is_not_null() & (extra.str.strip_chars() != "")
        values[S.PROMPT] = pl.when(filled).then(prompt + "\n\n" + extra).otherwise(prompt)
        errors.append(extra_error)
    return values, errors


def text_exprs(
    schema: pl.Schema, column: str, canonical: str, *, required: bool = True
) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) for a text field: strings as is, numbers cast, anything else an error."""
    null = pl.lit(None, pl.String)
    dtype = schema.get(column)
    type_error: pl.Expr = null
    if dtype is None or dtype == pl.Null:
        value = null
    elif dtype == pl.String:
        value = pl.col(column)
    elif dtype.is_numeric() or isinstance(dtype, pl.Categorical | pl.Enum):
        value = pl.col(column).cast(pl.String)
    else:
        value = null
        type_error = pl.when(pl.col(column).is_not_null()).then(
            pl.lit(not_text(column, canonical, dtype_kind(dtype)))
        )
    missing_error = pl.when(value.is_null()).then(pl.lit(missing(column, canonical))) if required else null
    return value, pl.coalesce(type_error, missing_error)


def messages_exprs(schema: pl.Schema, column: str) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) for a chat column: a list of {role, content} or ShareGPT {from, value}."""
    dtype = schema.get(column)
    if dtype is None or dtype == pl.Null:
        return pl.lit(None, S.MESSAGE_DTYPE), pl.lit(missing(column, S.MESSAGES))
    value, problem, has_null = _message_list_exprs(dtype, column)
    is_list = isinstance(dtype, pl.List)
    error = (
        pl.when(pl.col(column).is_null())
        .then(pl.lit(missing(column, S.MESSAGES)))
        .when(pl.col(column).list.len() == 0 if is_list else pl.lit(False))
        .then(pl.lit(empty_messages(column)))
        .otherwise(pl.lit(problem) if problem else pl.when(has_null).then(pl.lit(null_in_message(column))))
    )
    return value, error


def _message_list_exprs(dtype: pl.DataType, column: str) -> tuple[pl.Expr, str | None, pl.Expr]:
    """The chat value, the error every non-empty row of this type has (or None), and a has-null check."""
    null = pl.lit(None, S.MESSAGE_DTYPE)
    if not isinstance(dtype, pl.List):
        return null, not_messages(column, dtype_kind(dtype)), pl.lit(False)
    if dtype.inner == pl.Null:
        return null, None, pl.lit(True)
    if not isinstance(dtype.inner, pl.Struct):
        return null, not_messages(column, "array"), pl.lit(False)
    keys = message_keys(dtype)
    if keys is None:
        return null, no_message_keys(column), pl.lit(False)
    inner = {f.name: f.dtype for f in dtype.inner.fields}
    problem = next(
        (message_not_text(column, k, dtype_kind(inner[k])) for k in keys if not is_textual(inner[k])), None
    )
    role, content = (_element_text(k, inner[k]) for k in keys)
    if keys[0] == "from":
        role = role.str.to_lowercase().replace(SHAREGPT_ROLES)
    value = pl.col(column).list.eval(pl.struct(role.alias("role"), content.alias("content")))
    has_null = pl.col(column).list.eval(role.is_null() | content.is_null()).list.any()
    return value, problem, has_null


def message_keys(dtype: pl.DataType) -> tuple[str, str] | None:
    """The (role, content) struct keys of a chat column, or None when it is not one."""
    if not (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)):
        return None
    names = {f.name for f in dtype.inner.fields}
    return next((keys for keys in MESSAGE_KEYS if set(keys) <= names), None)


def _element_text(key: str, dtype: pl.DataType) -> pl.Expr:
    part = pl.element().struct.field(key)
    return part.cast(pl.String) if is_textual(dtype) else pl.lit(None, pl.String)


def is_textual(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Null or dtype.is_numeric()


# --------------------------------------------------------------------------- values polars turned into text


def flag_non_text(
    df: pl.DataFrame, m: Mapping, objects: list[dict[str, Any]] | None, raws: Sequence[bytes]
) -> pl.DataFrame:
    """Find content values polars silently turned into text (objects, arrays, booleans).

    polars' NDJSON reader types a column holding strings and objects as String, so a
    `{"prompt": {"a": 1}}` row would pass as the text '{"a": 1}'. Only rows whose text looks
    like that are re-read with `json` and checked; on the slow path every object is checked.
    """
    if objects is not None:
        return with_errors(df, [content_error(obj, m) for obj in objects])
    suspects = suspect_rows(df, m)
    if not suspects:
        return df
    errors: list[str | None] = [None] * df.height
    for i in suspects:
        errors[i] = content_error(json.loads(raws[i], strict=False), m)
    return with_errors(df, errors)


def suspect_rows(df: pl.DataFrame, m: Mapping) -> list[int]:
    """Rows with a String content value (or message part) that may be a coerced non-text value."""
    checks: list[pl.Expr] = []
    for column in m.sources:
        dtype = df.schema.get(column)
        if dtype == pl.String:
            checks.append(_looks_coerced(pl.col(column)))
        elif (keys := message_keys(dtype)) is not None:
            inner = {f.name: f.dtype for f in dtype.inner.fields}  # type: ignore[union-attr]
            for key in keys:
                if inner[key] == pl.String:
                    element = _looks_coerced(pl.element().struct.field(key))
                    checks.append(pl.col(column).list.eval(element).list.any())
    if not checks:
        return []
    mask = df.select(pl.any_horizontal(*checks).fill_null(False)).to_series()
    return mask.arg_true().to_list()


def _looks_coerced(value: pl.Expr) -> pl.Expr:
    return value.str.starts_with("{") | value.str.starts_with("[") | value.is_in(["true", "false"])
