"""Parsing filter values: the API sends every terms value as a string and range bounds as floats or strings."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, false, true
from sqlalchemy.sql.elements import ColumnElement


def as_float(value: Any) -> float | None:
    """A finite float, or None when the value is not one (so it matches nothing)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def as_datetime(value: Any) -> datetime | None:
    """ISO strings or epoch milliseconds (the Elasticsearch default for numbers) as naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif as_float(value) is not None:
        moment = datetime.fromtimestamp(float(value) / 1000, tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def text_bound(value: Any) -> str | None:
    return None if value is None else str(value)


def in_range(expr: ColumnElement, ge: Any, le: Any, parse: Callable[[Any], Any]) -> ColumnElement:
    """ge/le bounds after parsing; an unparsable bound matches nothing, like a failed Elasticsearch range."""
    clauses = []
    for bound, op in ((ge, expr.__ge__), (le, expr.__le__)):
        if bound is None:
            continue
        parsed = parse(bound)
        if parsed is None:
            return false()
        clauses.append(op(parsed))
    return and_(true(), *clauses)
