"""The content rules' two paths agree: polars expressions over typed blocks and Python over parsed objects.

A row's error must not depend on which path checked it (a block polars types, or one it
refuses), so for random JSON rows the fast path's quarantine message equals the Python rule's.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assay import schema as S
from assay.curate.readers import InputFile, ReadConfig
from assay.curate.readers.chat_text import message_from_text
from assay.curate.readers.chunks import FileCtx
from assay.curate.readers.jsonl import json_block_chunk
from assay.curate.readers.mapping import Mapping
from assay.curate.readers.rules import content_error

TEXTS = st.one_of(st.text(max_size=4), st.sampled_from(["{x", "[1]", "true", "false", "{}", "12"]))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXTS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "role", "content"]), inner, max_size=2),
    ),
    max_leaves=5,
)
MESSAGE = st.one_of(
    st.fixed_dictionaries({}, optional={"role": VALUES, "content": VALUES, "name": TEXTS}),
    st.fixed_dictionaries({}, optional={"from": VALUES, "value": VALUES}),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TEXTS}),
    VALUES,
)
MESSAGES = st.one_of(VALUES, st.lists(MESSAGE, max_size=4), st.lists(MESSAGE, max_size=3).map(json.dumps))

MAPPINGS = {
    "text": Mapping({S.TEXT: "text"}),
    "alpaca": Mapping({S.PROMPT: "instruction", S.RESPONSE: "output"}, "input"),
    "chat": Mapping({S.MESSAGES: "messages"}),
}


def _row(shape: str, draw_values: tuple) -> dict:
    a, b, c, msgs = draw_values
    rows = {
        "text": {"text": a, "n": 1},
        "alpaca": {"instruction": a, "output": b, "input": c},
        "chat": {"messages": msgs},
    }
    return rows[shape]


def _python_error(obj: dict, m: Mapping) -> str | None:
    """The Python rules; a chat stored as text is checked once parsed, as every path does."""
    column = m.fields.get(S.MESSAGES)
    if column and isinstance(obj.get(column), str):
        return message_from_text(obj[column], column)[1]
    return content_error(obj, m)


def _block_errors(objects: list[dict], m: Mapping) -> list[str | None]:
    """Each row's error from the JSON Lines block reader, which polars must be able to type."""
    lines = [json.dumps(obj).encode() for obj in objects]
    try:
        pl.read_ndjson(b"\n".join(lines), infer_schema_length=None)
    except Exception:  # polars refuses: the block goes to the Python path, which agrees by construction
        assume(False)
    ctx = FileCtx(InputFile(Path("rows.jsonl"), "t/rows.jsonl", "jsonl"), ReadConfig())
    ctx.mapping = m
    chunk = json_block_chunk([(i + 1, line) for i, line in enumerate(lines)], ctx)
    errors = dict(zip(chunk.quarantine[S.SOURCE_LINE], chunk.quarantine["error"], strict=True))
    assert chunk.rows.height + len(errors) == len(objects)
    return [errors.get(i + 1) for i in range(len(objects))]


ROW_VALUES = st.tuples(VALUES, VALUES, VALUES, MESSAGES)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(shape=st.sampled_from(sorted(MAPPINGS)), values=ROW_VALUES)
def test_a_row_typed_alone_gets_the_python_rules_error(shape, values):
    m, obj = MAPPINGS[shape], _row(shape, values)
    assert _block_errors([obj], m) == [_python_error(obj, m)]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(shape=st.sampled_from(["text", "alpaca"]), rows=st.lists(ROW_VALUES, min_size=2, max_size=5))
def test_text_rows_get_the_same_error_whatever_block_they_are_in(shape, rows):
    # polars types a column from every row of the block (numbers and objects among strings become
    # text); the error of each row must still be its own
    m = MAPPINGS[shape]
    objects = [_row(shape, values) for values in rows]
    assert _block_errors(objects, m) == [_python_error(obj, m) for obj in objects]


def test_rules_name_the_problem():
    m = MAPPINGS["chat"]
    cases = {
        "field `messages` is not a list of {role, content} messages (found number)": {"messages": 3},
        "field `messages` has a message without role and content (or from and value)": {
            "messages": [{"role": "u"}]
        },
        "field `messages` has a message whose role is not text (found object)": {
            "messages": [{"role": {}, "content": []}]
        },
        "field `messages` has a message with a null role or content": {
            "messages": [{"role": "user", "content": "a"}, {"role": "user"}]
        },
    }
    for message, obj in cases.items():
        assert _python_error(obj, m) == message
        assert _block_errors([obj], m) == [message]
