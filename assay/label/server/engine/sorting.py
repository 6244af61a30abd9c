"""Sort keys to SQL: up to ten keys, each with missing values last, then insertion order so pages are stable."""

from __future__ import annotations

from collections.abc import Sequence

from argilla_server.enums import MetadataPropertyType, QuestionType, SortOrder
from argilla_server.models import Record, Response, Suggestion
from argilla_server.search_engine.base import (
    MetadataFilterScope,
    Order,
    RecordFilterScope,
    ResponseFilterScope,
    SuggestionFilterScope,
)
from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from .schema import RECORD_COLUMNS, DatasetQuery


def order_by(q: DatasetQuery, sort: Sequence[Order] | None) -> list[ColumnElement]:
    """ORDER BY clauses for the sort keys in order (None: insertion order only)."""
    clauses: list[ColumnElement] = []
    for order in sort or []:
        key = _sort_key(q, order)
        clauses.append(key.is_(None))
        clauses.append(key.desc() if order.order == SortOrder.desc else key.asc())
    return [*clauses, Record.inserted_at.asc(), Record.id.asc()]


def _sort_key(q: DatasetQuery, order: Order) -> ColumnElement:
    scope = order.scope
    if isinstance(scope, RecordFilterScope):
        column = RECORD_COLUMNS.get(str(scope.property))
        if column is None:
            raise ValueError(f"Cannot sort by record property {scope.property!r}")
        return cast(column, String) if scope.property == "status" else column
    if isinstance(scope, MetadataFilterScope):
        kind = q.schema.metadata.get(scope.metadata_property)
        path = (scope.metadata_property,)
        if kind == MetadataPropertyType.terms:
            return q.json.text(Record.metadata_, path)
        return q.json.number(Record.metadata_, path)
    if isinstance(scope, SuggestionFilterScope):
        return _suggestion_key(q, scope)
    if isinstance(scope, ResponseFilterScope):
        return _response_key(q, scope)
    raise ValueError(f"Cannot sort by scope {scope!r}")


def _suggestion_key(q: DatasetQuery, scope: SuggestionFilterScope) -> ColumnElement:
    question = q.question(scope.question)
    if question is None:
        return literal(None)
    question_id, question_type = question
    prop = str(scope.property or "value")
    if prop == "value":
        expr = (
            q.json.number(Suggestion.value)
            if question_type == QuestionType.rating
            else q.json.text(Suggestion.value)
        )
    elif prop == "score":
        expr = q.json.number(Suggestion.score)
    elif prop == "agent":
        expr = Suggestion.agent
    else:
        expr = cast(Suggestion.type, String)
    related = and_(Suggestion.record_id == Record.id, Suggestion.question_id == question_id)
    return select(expr).where(related).limit(1).scalar_subquery()


def _response_key(q: DatasetQuery, scope: ResponseFilterScope) -> ColumnElement:
    """The mean of the (user's) responses, as the Elasticsearch nested sort with mode avg."""
    related = [Response.record_id == Record.id]
    if scope.user is not None:
        related.append(Response.user_id == scope.user.id)
    if scope.question:
        question = q.question(scope.question)
        path = (scope.question, "value")
        if question is not None and question[1] == QuestionType.rating:
            expr = func.avg(q.json.number(Response.values, path))
        else:
            expr = func.min(q.json.text(Response.values, path))
    else:
        expr = func.min(cast(Response.status, String))
    return select(expr).where(*related).scalar_subquery()
