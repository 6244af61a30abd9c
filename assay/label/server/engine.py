"""assay's search engine for argilla-server: every answer comes from Argilla's own database tables.

argilla-server 2.8 needs Elasticsearch or OpenSearch for searching, filtering, sorting, progress, metadata
metrics and vector similarity. Neither can be installed here, so this module registers a third engine
(``ARGILLA_SEARCH_ENGINE=assaydb``) that answers the same questions with SQL over the records, responses,
suggestions, vectors and metadata the server already stores. The web server and the rq worker therefore
always agree, and nothing has to be indexed: the index and update hooks are no-ops.

This file runs inside the argilla-server virtual environment, loaded by ``launcher.py`` before the app
starts. It may import only argilla_server (and what it brings: sqlalchemy), numpy and the standard
library. Semantics follow ``argilla_server/search_engine/commons.py`` (the Elasticsearch query building);
the measured details are in shared/ARGILLA.md. It works on SQLite and PostgreSQL: the few JSON
operations that differ live in ``_Json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import (
    MetadataPropertyType,
    QuestionType,
    RecordStatus,
    ResponseStatusFilter,
    SimilarityOrder,
    SortOrder,
    SuggestionType,
)
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from sqlalchemy import (
    JSON,
    Float,
    String,
    Text,
    and_,
    case,
    cast,
    column,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

ENGINE_NAME = "assaydb"
ENGINE_VERSION = "1"

BATCH_SIZE = 1000  # rows per round trip when a scan streams fields or vectors
MAX_TERMS = 2**14  # the Elasticsearch engine caps term buckets at this size too
BM25_K1, BM25_B = 1.2, 0.75

# ---------------------------------------------------------------------------------------------------------
# Dialect differences: JSON access on SQLite (json_each / json_extract) versus PostgreSQL (json operators)
# ---------------------------------------------------------------------------------------------------------


def _sqlite_path(path: Sequence[str]) -> str:
    """A SQLite JSON path such as $."question"."value" (keys quoted so any name is safe)."""
    return "$" + "".join('."' + key.replace('"', '\\"') + '"' for key in path)


@dataclasses.dataclass(frozen=True)
class _Elements:
    """Rows of a JSON value: the elements of an array, or the value itself when it is a scalar."""

    source: Any
    text: ColumnElement
    number: ColumnElement


_EMPTY_PATH = literal_column("'{}'")  # inline: asyncpg cannot bind a str where PostgreSQL wants text[]


class _Json:
    """JSON expressions that SQLite and PostgreSQL spell differently."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    def _pg_value(self, doc: ColumnElement, path: Sequence[str]) -> ColumnElement:
        if not path:
            return doc
        return doc[path[0]] if len(path) == 1 else doc[tuple(path)]

    def elements(self, doc: ColumnElement, path: Sequence[str] = ()) -> _Elements:
        """Why: Elasticsearch matches a multi-valued field when any value matches; lists need unnesting."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            array = case((func.json_typeof(value) == "array", value), else_=func.json_build_array(value))
            rows = func.json_array_elements(array).table_valued(column("value", JSON)).alias()
            text = rows.c.value.op("#>>", return_type=Text)(_EMPTY_PATH)
            number = case((func.json_typeof(rows.c.value) == "number", cast(text, Float)))
            return _Elements(rows, text, number)
        rows = func.json_each(doc, _sqlite_path(path)).table_valued("value", "type").alias()
        number = case((rows.c.type.in_(("integer", "real")), cast(rows.c.value, Float)))
        return _Elements(rows, cast(rows.c.value, Text), number)

    def number(self, doc: ColumnElement, path: Sequence[str] = ()) -> ColumnElement:
        """The JSON value at path as a float when it is a number, else NULL (sort keys, min/max)."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            text = value.op("#>>", return_type=Text)(_EMPTY_PATH)
            return case((func.json_typeof(value) == "number", cast(text, Float)))
        sqlite_path = _sqlite_path(path)
        kind = func.json_type(doc, sqlite_path)
        return case((kind.in_(("integer", "real")), cast(func.json_extract(doc, sqlite_path), Float)))

    def text(self, doc: ColumnElement, path: Sequence[str] = ()) -> ColumnElement:
        """The JSON value at path as text when it is a string, else NULL (sort keys)."""
        if self.postgresql:
            value = self._pg_value(doc, path)
            return case((func.json_typeof(value) == "string", value.op("#>>", return_type=Text)(_EMPTY_PATH)))
        sqlite_path = _sqlite_path(path)
        return case((func.json_type(doc, sqlite_path) == "text", func.json_extract(doc, sqlite_path)))


# ---------------------------------------------------------------------------------------------------------
# Value parsing: the API sends every terms value as a string and range bounds as floats or strings
# ---------------------------------------------------------------------------------------------------------


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def _as_datetime(value: Any) -> datetime | None:
    """ISO strings or epoch milliseconds (the Elasticsearch default for numbers) as naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif _as_float(value) is not None:
        moment = datetime.fromtimestamp(float(value) / 1000, tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _range(expr: ColumnElement, ge: Any, le: Any, parse) -> ColumnElement:
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


def _text_bound(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------------------
# The dataset's schema, loaded once per call: names of questions, metadata properties and fields
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Schema:
    """What a filter or sort scope names, resolved to ids and types."""

    questions: dict[str, tuple[UUID, str]]
    metadata: dict[str, str]
    fields: dict[str, str]

    @classmethod
    async def load(cls, db: AsyncSession, dataset_id: UUID) -> _Schema:
        questions = await db.execute(
            select(Question.name, Question.id, Question.settings).where(Question.dataset_id == dataset_id)
        )
        metadata = await db.execute(
            select(MetadataProperty.name, MetadataProperty.settings).where(
                MetadataProperty.dataset_id == dataset_id
            )
        )
        fields = await db.execute(select(Field.name, Field.settings).where(Field.dataset_id == dataset_id))
        return cls(
            questions={name: (qid, (settings or {}).get("type", "")) for name, qid, settings in questions},
            metadata={name: (settings or {}).get("type", "") for name, settings in metadata},
            fields={name: (settings or {}).get("type", "") for name, settings in fields},
        )


# ---------------------------------------------------------------------------------------------------------
# Filters: one SQL condition per leaf, ANDed; related rows are matched with correlated EXISTS subqueries
# ---------------------------------------------------------------------------------------------------------

_RECORD_COLUMNS = {
    "id": Record.id,
    "external_id": Record.external_id,
    "inserted_at": Record.inserted_at,
    "updated_at": Record.updated_at,
    "status": Record.status,
}


class _Query:
    """Translates the engine's filter and sort objects for one dataset into SQLAlchemy expressions."""

    def __init__(self, dataset_id: UUID, schema: _Schema, json_ops: _Json) -> None:
        self.dataset_id = dataset_id
        self.schema = schema
        self.json = json_ops

    # -- filters ------------------------------------------------------------------------------------------

    def where(self, filter: Filter | None) -> ColumnElement:
        """The records of the dataset that pass the filter."""
        condition = self.condition(filter) if filter is not None else true()
        return and_(Record.dataset_id == self.dataset_id, condition)

    def condition(self, filter: Filter) -> ColumnElement:
        if isinstance(filter, AndFilter):
            return and_(true(), *[self.condition(leaf) for leaf in filter.filters])
        scope = filter.scope
        if isinstance(scope, RecordFilterScope):
            return self._record(filter, scope.property)
        if isinstance(scope, MetadataFilterScope):
            return self._metadata(filter, scope.metadata_property)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion(filter, scope)
        if isinstance(scope, ResponseFilterScope):
            return self._response(filter, scope)
        raise ValueError(f"Cannot process filter scope {scope!r}")

    def _record(self, filter: Filter, prop: str) -> ColumnElement:
        column = _RECORD_COLUMNS.get(str(prop))
        if column is None:
            raise ValueError(f"Cannot filter on record property {prop!r}")
        parse = {
            "id": _as_uuid,
            "inserted_at": _as_datetime,
            "updated_at": _as_datetime,
            "status": lambda v: v if v in {s.value for s in RecordStatus} else None,
        }.get(str(prop), _text_bound)
        if isinstance(filter, TermsFilter):
            values = [parsed for parsed in map(parse, filter.values) if parsed is not None]
            return column.in_(values) if values else false()
        if prop in ("id", "status"):
            raise ValueError(f"A range filter on record {prop} is not supported")
        return _range(column, filter.ge, filter.le, parse)

    def _metadata(self, filter: Filter, name: str) -> ColumnElement:
        kind = self.schema.metadata.get(name)
        if kind is None:
            return false()
        elements = self.json.elements(Record.metadata_, (name,))
        return self._match_elements(elements, filter, numeric=kind != MetadataPropertyType.terms)

    def _match_elements(self, elements: _Elements, filter: Filter, *, numeric: bool) -> ColumnElement:
        """EXISTS an element of the JSON value that is one of the terms or lies in the range."""
        if isinstance(filter, TermsFilter):
            if numeric:
                numbers = [n for n in map(_as_float, filter.values) if n is not None]
                matched = elements.number.in_(numbers) if numbers else false()
            else:
                matched = elements.text.in_([str(v) for v in filter.values])
        elif numeric:
            matched = _range(elements.number, filter.ge, filter.le, _as_float)
        else:
            matched = _range(elements.text, filter.ge, filter.le, _text_bound)
        return select(literal(1)).select_from(elements.source).where(matched).exists()

    def _question(self, name: str | None) -> tuple[UUID, str] | None:
        return self.schema.questions.get(name) if name else None

    def _suggestion(self, filter: Filter, scope: SuggestionFilterScope) -> ColumnElement:
        question = self._question(scope.question)
        if question is None:
            return false()
        question_id, question_type = question
        prop = str(scope.property or "value")
        if prop == "value":
            numeric = question_type == QuestionType.rating or self._numeric_range(filter)
            matched = self._match_elements(self.json.elements(Suggestion.value), filter, numeric=numeric)
        elif prop == "score":
            matched = self._match_elements(self.json.elements(Suggestion.score), filter, numeric=True)
        elif prop == "agent":
            matched = self._column_match(Suggestion.agent, filter)
        elif prop == "type":
            matched = self._column_match(Suggestion.type, filter, valid={t.value for t in SuggestionType})
        else:
            raise ValueError(f"Cannot filter on suggestion property {prop!r}")
        related = and_(Suggestion.record_id == Record.id, Suggestion.question_id == question_id, matched)
        return select(literal(1)).select_from(Suggestion).where(related).exists()

    @staticmethod
    def _numeric_range(filter: Filter) -> bool:
        return isinstance(filter, RangeFilter) and all(
            _as_float(b) is not None for b in (filter.ge, filter.le) if b is not None
        )

    @staticmethod
    def _column_match(column: ColumnElement, filter: Filter, valid: set[str] | None = None) -> ColumnElement:
        if isinstance(filter, TermsFilter):
            values = [v for v in filter.values if valid is None or v in valid]
            return column.in_(values) if values else false()
        return _range(column, filter.ge, filter.le, _text_bound)

    def _response(self, filter: Filter, scope: ResponseFilterScope) -> ColumnElement:
        user_id = scope.user.id if scope.user is not None else None
        if scope.question:
            question = self._question(scope.question)
            if question is None:
                return false()
            numeric = question[1] == QuestionType.rating or self._numeric_range(filter)
            elements = self.json.elements(Response.values, (scope.question, "value"))
            return self._responses_exist(self._match_elements(elements, filter, numeric=numeric), user_id)
        if scope.property == "status" and isinstance(filter, TermsFilter):
            return self._response_status(list(filter.values), user_id)
        raise ValueError(f"Cannot process filter scope {scope!r}")

    @staticmethod
    def _responses_exist(condition: ColumnElement, user_id: UUID | None) -> ColumnElement:
        related = [Response.record_id == Record.id, condition]
        if user_id is not None:
            related.append(Response.user_id == user_id)
        return select(literal(1)).select_from(Response).where(*related).exists()

    def _response_status(self, values: list[str], user_id: UUID | None) -> ColumnElement:
        """ "pending" means no response (by that user, or by anyone when unscoped), OR-ed with the rest."""
        statuses = [
            v
            for v in values
            if v in {s.value for s in ResponseStatusFilter} and v != ResponseStatusFilter.pending
        ]
        clauses = []
        if ResponseStatusFilter.pending in values:
            clauses.append(not_(self._responses_exist(true(), user_id)))
        if statuses:
            clauses.append(self._responses_exist(Response.status.in_(statuses), user_id))
        return or_(false(), *clauses)

    # -- sorting ------------------------------------------------------------------------------------------

    def order_by(self, sort: Sequence[Order] | None) -> list[ColumnElement]:
        """Keys in order, each with missing values last, then insertion order so pages are stable."""
        clauses: list[ColumnElement] = []
        for order in sort or []:
            key = self.sort_key(order)
            clauses.append(key.is_(None))
            clauses.append(key.desc() if order.order == SortOrder.desc else key.asc())
        return [*clauses, Record.inserted_at.asc(), Record.id.asc()]

    def sort_key(self, order: Order) -> ColumnElement:
        scope = order.scope
        if isinstance(scope, RecordFilterScope):
            column = _RECORD_COLUMNS.get(str(scope.property))
            if column is None:
                raise ValueError(f"Cannot sort by record property {scope.property!r}")
            return cast(column, String) if scope.property == "status" else column
        if isinstance(scope, MetadataFilterScope):
            kind = self.schema.metadata.get(scope.metadata_property)
            path = (scope.metadata_property,)
            if kind == MetadataPropertyType.terms:
                return self.json.text(Record.metadata_, path)
            return self.json.number(Record.metadata_, path)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion_key(scope)
        if isinstance(scope, ResponseFilterScope):
            return self._response_key(scope)
        raise ValueError(f"Cannot sort by scope {scope!r}")

    def _suggestion_key(self, scope: SuggestionFilterScope) -> ColumnElement:
        question = self._question(scope.question)
        if question is None:
            return literal(None)
        question_id, question_type = question
        prop = str(scope.property or "value")
        if prop == "value":
            expr = (
                self.json.number(Suggestion.value)
                if question_type == QuestionType.rating
                else self.json.text(Suggestion.value)
            )
        elif prop == "score":
            expr = self.json.number(Suggestion.score)
        elif prop == "agent":
            expr = Suggestion.agent
        else:
            expr = cast(Suggestion.type, String)
        related = and_(Suggestion.record_id == Record.id, Suggestion.question_id == question_id)
        return select(expr).where(related).limit(1).scalar_subquery()

    def _response_key(self, scope: ResponseFilterScope) -> ColumnElement:
        """The mean of the (user's) responses, as the Elasticsearch nested sort with mode avg."""
        related = [Response.record_id == Record.id]
        if scope.user is not None:
            related.append(Response.user_id == scope.user.id)
        if scope.question:
            question = self._question(scope.question)
            path = (scope.question, "value")
            if question is not None and question[1] == QuestionType.rating:
                expr = func.avg(self.json.number(Response.values, path))
            else:
                expr = func.min(self.json.text(Response.values, path))
        else:
            expr = func.min(cast(Response.status, String))
        return select(expr).where(*related).scalar_subquery()


# ---------------------------------------------------------------------------------------------------------
# Text queries: a simple_query_string subset (AND of terms, | for OR, -term, "phrases", prefix*) with BM25
# ---------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_CHUNK = re.compile(r'([+-]?)"([^"]*)"|(\S+)')


def _tokens(text: str) -> list[str]:
    return [token.casefold() for token in _WORD.findall(text)]


@dataclasses.dataclass(frozen=True)
class _Clause:
    tokens: tuple[str, ...]
    phrase: bool = False
    prefix: bool = False
    negated: bool = False


def _parse_alternative(text: str) -> list[_Clause]:
    """One |-separated part: clauses that must all match (those marked - must not)."""
    clauses = []
    for match in _CHUNK.finditer(text):
        sign, quoted, bare = match.group(1), match.group(2), match.group(3)
        phrase = bare is None
        if not phrase:
            sign, chunk = (bare[0], bare[1:]) if bare[0] in "+-" and len(bare) > 1 else ("", bare)
        else:
            chunk = quoted
        tokens = tuple(_tokens(chunk))
        if tokens:
            prefix = not phrase and chunk.endswith("*")
            clauses.append(
                _Clause(tokens, phrase=phrase and len(tokens) > 1, prefix=prefix, negated=sign == "-")
            )
    return clauses


@dataclasses.dataclass
class _TextSearch:
    """A parsed text query and the fields it reads; ``matches`` says whether a record's analysed fields fit."""

    alternatives: list[list[_Clause]]
    fields: dict[str, str]

    @classmethod
    def parse(cls, query: TextQuery | str | None, schema: _Schema) -> _TextSearch | None:
        if query is None:
            return None
        text_query = TextQuery(q=query) if isinstance(query, str) else query
        alternatives = [alt for alt in (_parse_alternative(part) for part in text_query.q.split("|")) if alt]
        if not alternatives:
            return None
        searched = {n: t for n, t in schema.fields.items() if t != "image"}
        if text_query.field:
            if text_query.field not in schema.fields:
                raise ValueError(f"Field {text_query.field} not found in dataset")
            searched = {text_query.field: schema.fields[text_query.field]}
        return cls(alternatives, searched)

    @property
    def positive_tokens(self) -> list[tuple[str, bool]]:
        seen = {}
        for alternative in self.alternatives:
            for clause in alternative:
                if not clause.negated:
                    for i, token in enumerate(clause.tokens):
                        seen[(token, clause.prefix and i == len(clause.tokens) - 1)] = None
        return list(seen)

    def field_tokens(self, fields: dict | None) -> list[list[str]]:
        """The analysed text of each searched field (chat fields: every message's content)."""
        fields = fields or {}
        return [
            _tokens(" ".join(_strings(fields.get(name), chat=kind == "chat")))
            for name, kind in self.fields.items()
        ]

    def matches(self, doc: list[list[str]]) -> bool:
        return any(self._alternative_matches(alt, doc) for alt in self.alternatives)

    def _alternative_matches(self, clauses: list[_Clause], doc: list[list[str]]) -> bool:
        return all(_clause_matches(c, doc) != c.negated for c in clauses)


def _strings(value: Any, *, chat: bool = False) -> Iterable[str]:
    """The text leaves of a field value; for chat only message contents, as Elasticsearch indexes them."""
    if value is None:
        return
    if chat and isinstance(value, list):
        for message in value:
            if isinstance(message, dict):
                yield from _strings(message.get("content"))
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:
        yield str(value)


def _clause_matches(clause: _Clause, doc: list[list[str]]) -> bool:
    if clause.phrase:
        n = len(clause.tokens)
        return any(
            tuple(field[i : i + n]) == clause.tokens for field in doc for i in range(len(field) - n + 1)
        )
    last = len(clause.tokens) - 1
    return all(
        any(_token_hits(token, field, clause.prefix and i == last) for field in doc)
        for i, token in enumerate(clause.tokens)
    )


def _token_hits(token: str, field: list[str], prefix: bool) -> int:
    if prefix:
        return sum(1 for word in field if word.startswith(token))
    return field.count(token)


@dataclasses.dataclass
class _Bm25:
    """Relevance as in Elasticsearch's default similarity, with document frequencies over the candidates."""

    terms: list[tuple[str, bool]]
    docs: int = 0
    total_length: int = 0
    df: Counter = dataclasses.field(default_factory=Counter)
    hits: list[tuple[Any, dict, int]] = dataclasses.field(default_factory=list)

    def observe(self, doc: list[list[str]]) -> tuple[dict, int]:
        """Count a candidate; returns its term frequencies and length for ``add``."""
        words = [word for field in doc for word in field]
        tf = {term: _token_hits(term[0], words, term[1]) for term in self.terms}
        self.docs += 1
        self.total_length += len(words)
        self.df.update(term for term, count in tf.items() if count)
        return tf, len(words)

    def add(self, record_id: Any, tf: dict, length: int) -> None:
        self.hits.append((record_id, tf, length))

    def scored(self) -> list[tuple[Any, float]]:
        average = self.total_length / self.docs if self.docs else 1.0
        return [(record_id, self._score(tf, length, average)) for record_id, tf, length in self.hits]

    def _score(self, tf: dict, length: int, average: float) -> float:
        score = 0.0
        for term, count in tf.items():
            if not count:
                continue
            idf = math.log(1 + (self.docs - self.df[term] + 0.5) / (self.df[term] + 0.5))
            norm = count + BM25_K1 * (1 - BM25_B + BM25_B * length / (average or 1.0))
            score += idf * count * (BM25_K1 + 1) / norm
        return score


# ---------------------------------------------------------------------------------------------------------
# Vectors: cosine similarity in numpy over the filtered candidates, streamed in batches
# ---------------------------------------------------------------------------------------------------------


def _parse_vector(raw: Any) -> np.ndarray | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return np.fromstring(text[1:-1], dtype=np.float64, sep=",")
        except ValueError:
            raw = json.loads(text)
    return np.asarray(raw, dtype=np.float64)


def _cosine_scores(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(1 + cos) / 2, the Elasticsearch cosine score; zero vectors score as orthogonal."""
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    cosine = np.divide(matrix @ query, norms, out=np.zeros(len(matrix)), where=norms > 0)
    return (1.0 + cosine) / 2.0


class _TopK:
    """The k best (score, record id) pairs seen so far; ties keep the earlier record."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[tuple[float, int, Any]] = []
        self.seen = 0

    def push(self, ids: Sequence[Any], scores: np.ndarray) -> None:
        for record_id, score in zip(ids, scores.tolist(), strict=True):
            self.seen += 1
            item = (score, -self.seen, record_id)
            if len(self.heap) < self.k:
                heapq.heappush(self.heap, item)
            elif item > self.heap[0]:
                heapq.heapreplace(self.heap, item)

    def best(self) -> list[tuple[Any, float]]:
        return [(record_id, score) for score, _, record_id in sorted(self.heap, reverse=True)]


# ---------------------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------------------


def _user_order_key(user_id: Any, record_id: UUID) -> bytes:
    """A fixed pseudo-random position per (user, record): overlapping annotators see different orders."""
    return hashlib.blake2b(f"{user_id}:{record_id}".encode(), digest_size=8).digest()


@SearchEngine.register(engine_name=ENGINE_NAME)
class AssayDbSearchEngine(SearchEngine):
    """Answers argilla-server's search-engine calls from its own database; holds no state between calls."""

    @classmethod
    async def new_instance(cls) -> AssayDbSearchEngine:
        return cls()

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[tuple[AsyncSession, _Json]]:
        """A short read-only session of our own, so callers' transactions are never touched."""
        async with AsyncSessionLocal() as db:
            yield db, _Json(db.bind.dialect.name)

    async def _query(self, db: AsyncSession, json_ops: _Json, dataset_id: UUID) -> _Query:
        return _Query(dataset_id, await _Schema.load(db, dataset_id), json_ops)

    async def ping(self) -> bool:
        async with self._session() as (db, _):
            return (await db.execute(select(literal(1)))).scalar() == 1

    async def info(self) -> dict:
        async with self._session() as (_, json_ops):
            database = "postgresql" if json_ops.postgresql else "sqlite"
        return {"engine": ENGINE_NAME, "version": ENGINE_VERSION, "database": database}

    # Index maintenance: the database already holds everything, so these have nothing to do.
    async def create_index(self, dataset: Dataset) -> None:
        return None

    async def delete_index(self, dataset: Dataset) -> None:
        return None

    async def configure_metadata_property(
        self, dataset: Dataset, metadata_property: MetadataProperty
    ) -> None:
        return None

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        return None

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        return None

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        return None

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        return None

    async def update_record_response(self, response: Response) -> None:
        return None

    async def delete_record_response(self, response: Response) -> None:
        return None

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        return None

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        return None

    # Progress and metrics.
    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with self._session() as (db, _):
            rows = await db.execute(
                select(Record.status, func.count())
                .where(Record.dataset_id == dataset.id)
                .group_by(Record.status)
            )
            counts = {_enum_text(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with self._session() as (db, _):
            rows = await db.execute(
                select(Response.status, func.count())
                .join(Record, Record.id == Response.record_id)
                .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                .group_by(Response.status)
            )
            counts = {_enum_text(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        async with self._session() as (db, json_ops):
            elements = json_ops.elements(Record.metadata_, (metadata_property.name,))
            base = select().select_from(Record).join(elements.source, true())
            base = base.where(Record.dataset_id == metadata_property.dataset_id)
            if metadata_property.type == MetadataPropertyType.terms:
                return await self._terms_metrics(db, base, elements)
            row = (
                await db.execute(base.add_columns(func.min(elements.number), func.max(elements.number)))
            ).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=_maybe_int(row[0]), max=_maybe_int(row[1]))
        return FloatMetadataMetrics(min=row[0], max=row[1])

    @staticmethod
    async def _terms_metrics(db: AsyncSession, base: Any, elements: _Elements) -> TermsMetrics:
        count = func.count().label("n")
        stmt = base.add_columns(elements.text, count).where(elements.text.is_not(None))
        stmt = stmt.group_by(elements.text).order_by(count.desc(), elements.text.asc()).limit(MAX_TERMS)
        values = [TermsMetrics.TermCount(term=term, count=n) for term, n in await db.execute(stmt)]
        return TermsMetrics(total=sum(v.count for v in values), values=values)

    # Search.
    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> SearchResponses:
        """Filter in SQL; text queries score in Python; per-user random order on /me without sort or query."""
        async with self._session() as (db, json_ops):
            q = await self._query(db, json_ops, dataset.id)
            text = _TextSearch.parse(query, q.schema)
            where = q.where(filter)
            if text is not None:
                hits = await self._text_hits(db, q, where, text, sort)
                return _page(hits, offset, limit)
            if user_id is not None and not sort:
                ids = list((await db.execute(select(Record.id).where(where))).scalars())
                ids.sort(key=lambda record_id: _user_order_key(user_id, record_id))
                return _page([(record_id, None) for record_id in ids], offset, limit)
            total = (await db.execute(select(func.count()).select_from(Record).where(where))).scalar_one()
            stmt = select(Record.id).where(where).order_by(*q.order_by(sort)).offset(offset).limit(limit)
            items = [
                SearchResponseItem(record_id=record_id) for record_id in (await db.execute(stmt)).scalars()
            ]
        return SearchResponses(items=items, total=total)

    async def _text_hits(
        self, db: AsyncSession, q: _Query, where: ColumnElement, text: _TextSearch, sort: list[Order] | None
    ) -> list[tuple[UUID, float | None]]:
        """Stream the candidates' fields in sort order, keep those that match, score by BM25."""
        bm25 = _Bm25(text.positive_tokens)
        stmt = select(Record.id, Record.fields).where(where).order_by(*q.order_by(sort))
        async for record_id, fields in _stream(db, stmt):
            doc = text.field_tokens(fields)
            tf, length = bm25.observe(doc)
            if text.matches(doc):
                bm25.add(record_id, tf, length)
        hits = bm25.scored()
        if not sort:
            hits.sort(key=lambda hit: -hit[1])  # stable: equal scores keep insertion order
        return hits

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        """The k nearest records by cosine score among those the filter and text query allow."""
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        async with self._session() as (db, json_ops):
            q = await self._query(db, json_ops, dataset.id)
            vector = (
                np.asarray(value, dtype=np.float64)
                if value
                else await self._record_vector(db, record, vector_settings)
            )
            if vector is None or vector.size == 0:
                raise ValueError("Cannot find a vector value to apply with provided info")
            if order == SimilarityOrder.least_similar:
                vector = -vector
            where = q.where(filter)
            if record is not None:
                where = and_(where, Record.id != record.id)
            allowed = await self._text_allowed(db, q, where, query)
            best = await self._nearest(db, where, vector_settings, vector, max_results, allowed)
        if threshold is not None:
            best = [(record_id, score) for record_id, score in best if score >= threshold]
        items = [SearchResponseItem(record_id=record_id, score=score) for record_id, score in best]
        return SearchResponses(items=items, total=len(items))

    async def _text_allowed(
        self, db: AsyncSession, q: _Query, where: ColumnElement, query: Any
    ) -> set[UUID] | None:
        text = _TextSearch.parse(query, q.schema)
        if text is None:
            return None
        return {record_id for record_id, _ in await self._text_hits(db, q, where, text, None)}

    @staticmethod
    async def _record_vector(
        db: AsyncSession, record: Record, vector_settings: VectorSettings
    ) -> np.ndarray | None:
        stmt = select(cast(Vector.value, Text)).where(
            Vector.record_id == record.id, Vector.vector_settings_id == vector_settings.id
        )
        return _parse_vector((await db.execute(stmt)).scalar())

    @staticmethod
    async def _nearest(
        db: AsyncSession,
        where: ColumnElement,
        vector_settings: VectorSettings,
        vector: np.ndarray,
        k: int,
        allowed: set[UUID] | None,
    ) -> list[tuple[UUID, float]]:
        top = _TopK(max(k, 0))
        stmt = (
            select(Vector.record_id, cast(Vector.value, Text))
            .join(Record, Record.id == Vector.record_id)
            .where(Vector.vector_settings_id == vector_settings.id, where)
            .order_by(Record.inserted_at.asc(), Record.id.asc())
        )
        batch_ids: list[UUID] = []
        batch_rows: list[np.ndarray] = []
        async for record_id, raw in _stream(db, stmt):
            if allowed is not None and record_id not in allowed:
                continue
            row = _parse_vector(raw)
            if row is None or row.shape != vector.shape:
                continue
            batch_ids.append(record_id)
            batch_rows.append(row)
            if len(batch_ids) >= BATCH_SIZE:
                top.push(batch_ids, _cosine_scores(vector, np.vstack(batch_rows)))
                batch_ids, batch_rows = [], []
        if batch_ids:
            top.push(batch_ids, _cosine_scores(vector, np.vstack(batch_rows)))
        return top.best()


async def _stream(db: AsyncSession, stmt: Any) -> AsyncIterator[Any]:
    """Rows in batches, so a large dataset never sits in memory at once."""
    result = await db.stream(stmt.execution_options(yield_per=BATCH_SIZE))
    async for partition in result.partitions(BATCH_SIZE):
        for row in partition:
            yield row


def _page(hits: list[tuple[UUID, float | None]], offset: int, limit: int) -> SearchResponses:
    window = hits[offset : offset + limit]
    return SearchResponses(
        items=[SearchResponseItem(record_id=rid, score=score) for rid, score in window], total=len(hits)
    )


def _enum_text(value: Any) -> str:
    return getattr(value, "value", value)


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)
