"""JSON expressions that SQLite (json_each / json_extract) and PostgreSQL (json operators) spell differently.

Argilla keeps metadata, suggestion values and response values in JSON columns; every filter and sort on
them goes through ``JsonSql`` so the rest of the engine never asks which database it runs on (on
PostgreSQL, metadata filters and metrics read the metadata index instead, ``metaindex.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Float, Text, case, cast, column, func, literal_column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

_EMPTY_PATH = literal_column("'{}'")  # inline: asyncpg cannot bind a str where PostgreSQL wants text[]


def sqlite_path(path: Sequence[str]) -> str:
    """A SQLite JSON path such as $."question"."value" (keys quoted so any name is safe)."""
    return "$" + "".join('."' + key.replace('"', '\\"') + '"' for key in path)


@dataclasses.dataclass(frozen=True)
class Elements:
    """Rows of a JSON value: the elements of an array, or the value itself when it is a scalar."""

    source: Any
    text: ColumnElement
    number: ColumnElement


class JsonSql:
    """JSON expressions for one SQL dialect ("sqlite" or "postgresql")."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    @classmethod
    def of(cls, db: AsyncSession) -> JsonSql:
        """The expressions for the database behind this session."""
        return cls(db.bind.dialect.name)

    def _pg_value(self, doc: ColumnElement, path: Sequence[str]) -> ColumnElement:
        if not path:
            return doc
        return doc[path[0]] if len(path) == 1 else doc[tuple(path)]

    def elements(self, doc: ColumnElement, path: Sequence[str] = ()) -> Elements:
        """Why: Elasticsearch matches a multi-valued field when any value matches; lists need unnesting."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            array = case((func.json_typeof(value) == "array", value), else_=func.json_build_array(value))
            rows = func.json_array_elements(array).table_valued(column("value", JSON)).alias()
            text = rows.c.value.op("#>>", return_type=Text)(_EMPTY_PATH)
            number = case((func.json_typeof(rows.c.value) == "number", cast(text, Float)))
            return Elements(rows, text, number)
        rows = func.json_each(doc, sqlite_path(path)).table_valued("value", "type").alias()
        number = case((rows.c.type.in_(("integer", "real")), cast(rows.c.value, Float)))
        return Elements(rows, cast(rows.c.value, Text), number)

    def number(self, doc: ColumnElement, path: Sequence[str] = ()) -> ColumnElement:
        """The JSON value at path as a float when it is a number, else NULL (sort keys, min/max)."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            text = value.op("#>>", return_type=Text)(_EMPTY_PATH)
            return case((func.json_typeof(value) == "number", cast(text, Float)))
        json_path = sqlite_path(path)
        kind = func.json_type(doc, json_path)
        return case((kind.in_(("integer", "real")), cast(func.json_extract(doc, json_path), Float)))

    def text(self, doc: ColumnElement, path: Sequence[str] = ()) -> ColumnElement:
        """The JSON value at path as text when it is a string, else NULL (sort keys)."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            return case((func.json_typeof(value) == "string", value.op("#>>", return_type=Text)(_EMPTY_PATH)))
        json_path = sqlite_path(path)
        return case((func.json_type(doc, json_path) == "text", func.json_extract(doc, json_path)))
