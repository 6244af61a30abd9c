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
import json
import math
import os
import re
import threading
from collections import Counter, OrderedDict
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
# Vectors: cosine similarity in numpy over the filtered candidates, from a validated in-process cache
# ---------------------------------------------------------------------------------------------------------

# Decoding a 384-d vector from its JSON column costs ~0.2 ms, so decoding every stored vector on every
# query made a similarity search take seconds at 20k records. Decoded vectors are therefore kept in a
# module-level cache, one block per (dataset, vector settings), bounded by VECTOR_CACHE_BYTES (least
# recently used blocks are dropped first; a block larger than the budget is used for its query only).
#
# Why the cache can never serve stale vectors: every query still reads, in the same SQL statement that
# applies its filter, the record id and the vector row's `updated_at` of every candidate (cheap columns;
# no JSON is decoded). A cached vector is used only when it was read together with exactly that
# `updated_at`; anything else (a new record, an updated vector) is fetched and decoded again, and deleted
# records are simply no longer candidates. Argilla bumps `updated_at` on every write of a vector row: its
# upserts (`CRUDMixin.upsert_many`, used by bulk record create/update, record PATCH and Hub import) set it
# to a fresh `utcnow()`, and ORM updates have `onupdate=utcnow`. Validation is per row, so writes from any
# process (web server, rq worker) and commits in any order are seen by the next query.
VECTOR_CACHE_BYTES = int(os.environ.get("ASSAY_VECTOR_CACHE_MB", "256")) * 2**20
_FETCH_ALL_FRACTION = 0.25  # more unknown rows than this share of the candidates: reload the whole block
_IN_CHUNK = 500  # record ids per IN (...) when fetching a few vectors


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


def _parse_vectors(texts: Sequence[str | None], dims: int) -> list[np.ndarray | None]:
    """JSON arrays of `dims` numbers decoded with one numpy parse of the concatenation; odd rows one by one."""
    out: list[np.ndarray | None] = [None] * len(texts)
    plain: list[int] = []
    for i, text in enumerate(texts):
        if text is not None and text.count(",") == dims - 1 and text[:1] == "[" and text[-1:] == "]":
            plain.append(i)
        else:
            out[i] = _parse_vector(text)
    if plain:
        joined = ",".join(texts[i][1:-1] for i in plain)
        try:
            flat = np.fromstring(joined, dtype=np.float64, sep=",")
        except ValueError:
            flat = np.empty(0)
        if flat.size == len(plain) * dims:
            rows = flat.reshape(len(plain), dims)
            for n, i in enumerate(plain):
                out[i] = rows[n]
        else:  # something unusual (nested values, text): decode these rows one by one
            for i in plain:
                out[i] = _parse_vector(texts[i])
    return out


class _VectorBlock:
    """The decoded vectors of one (dataset, vector settings): rows of a matrix plus their row norms.

    `rows` maps a record id (as the database renders it in text) to the vector row's `updated_at` text and
    its row in `matrix` (-1: the stored value is not a vector of `dims` numbers). Vectors are stored as
    float32 while every value round-trips exactly (what the SDK sends from float32 embeddings), else the
    block switches to float64, so scores are computed from exactly the stored numbers either way.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.rows: dict[str, tuple[str, int]] = {}
        self.matrix = np.empty((0, dims), dtype=np.float32)
        self.norms = np.empty(0, dtype=np.float64)
        self.used = 0

    @property
    def nbytes(self) -> int:
        return self.matrix.nbytes + self.norms.nbytes + 200 * len(self.rows)

    def put(self, fetched: Sequence[tuple[str, str, np.ndarray | None]]) -> None:
        """Store freshly read (record id, updated_at, vector) rows, replacing older versions."""
        good = [(key, stamp, row) for key, stamp, row in fetched if row is not None and row.shape == (self.dims,)]
        for key, stamp, row in fetched:
            if row is None or row.shape != (self.dims,):
                self.rows[key] = (stamp, -1)
        if not good:
            return
        values = np.vstack([row for _, _, row in good])
        if self.matrix.dtype == np.float32 and not np.array_equal(values.astype(np.float32), values):
            self.matrix = self.matrix.astype(np.float64)
        live = sum(1 for _, index in self.rows.values() if index >= 0)
        if self.used + len(good) > len(self.matrix):
            if self.used > 2 * live + 1000:
                self._compact()
            if self.used + len(good) > len(self.matrix):
                self._grow(max(self.used + len(good), 2 * len(self.matrix)))
        start = self.used
        self.matrix[start : start + len(good)] = values
        self.norms[start : start + len(good)] = np.linalg.norm(values, axis=1)
        self.used += len(good)
        for offset, (key, stamp, _) in enumerate(good):
            self.rows[key] = (stamp, start + offset)

    def _grow(self, capacity: int) -> None:
        matrix = np.empty((capacity, self.dims), dtype=self.matrix.dtype)
        norms = np.empty(capacity, dtype=np.float64)
        matrix[: self.used], norms[: self.used] = self.matrix[: self.used], self.norms[: self.used]
        self.matrix, self.norms = matrix, norms

    def _compact(self) -> None:
        """Drop rows of replaced vectors (each update leaves its old row behind)."""
        live = [(key, stamp, index) for key, (stamp, index) in self.rows.items() if index >= 0]
        old = np.fromiter((index for _, _, index in live), dtype=np.int64, count=len(live))
        self.matrix, self.norms = self.matrix[old], self.norms[old]
        self.used = len(live)
        for new, (key, stamp, _) in enumerate(live):
            self.rows[key] = (stamp, new)

    def scores(self, indices: np.ndarray, query: np.ndarray) -> np.ndarray:
        """(1 + cos) / 2 for the given rows, like `_cosine_scores`, in chunks to bound temporary memory."""
        out = np.empty(len(indices), dtype=np.float64)
        query_norm = np.linalg.norm(query) or 1.0
        for start in range(0, len(indices), 8192):
            part = indices[start : start + 8192]
            dots = self.matrix[part].astype(np.float64, copy=False) @ query
            norms = self.norms[part] * query_norm
            cosine = np.divide(dots, norms, out=np.zeros(len(part)), where=norms > 0)
            out[start : start + len(part)] = (1.0 + cosine) / 2.0
        return out


class _VectorCache:
    """Blocks by (dataset id, vector settings id), least recently used first out past the byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.blocks: OrderedDict[tuple[UUID, UUID], _VectorBlock] = OrderedDict()
        self.lock = threading.Lock()

    def block(self, key: tuple[UUID, UUID], dims: int) -> _VectorBlock:
        block = self.blocks.get(key)
        if block is None or block.dims != dims:
            block = self.blocks[key] = _VectorBlock(dims)
        self.blocks.move_to_end(key)
        return block

    def trim(self) -> None:
        total = sum(block.nbytes for block in self.blocks.values())
        while self.blocks and total > self.budget:
            _, dropped = self.blocks.popitem(last=False)
            total -= dropped.nbytes

    def clear(self) -> None:
        with self.lock:
            self.blocks.clear()


_VECTORS = _VectorCache(VECTOR_CACHE_BYTES)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, best first; ties keep the earlier position (as a stable sort)."""
    if k <= 0 or len(scores) == 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        positions = np.flatnonzero(scores >= kth)
    else:
        positions = np.arange(len(scores))
    return positions[np.argsort(-scores[positions], kind="stable")][:k]


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
        """Candidates (with their vector rows' updated_at) from SQL, vectors from the validated cache."""
        dims = int(vector_settings.dimensions)
        if k <= 0 or vector.shape != (dims,):
            return []
        stmt = (
            select(cast(Vector.record_id, Text), cast(Vector.updated_at, Text))
            .join(Record, Record.id == Vector.record_id)
            .where(Vector.vector_settings_id == vector_settings.id, where)
            .order_by(Record.inserted_at.asc(), Record.id.asc())
        )
        candidates: list[tuple[str, str]] = [tuple(row) for row in (await db.execute(stmt)).all()]
        if allowed is not None:
            candidates = [(key, stamp) for key, stamp in candidates if UUID(key) in allowed]
        cache_key = (vector_settings.dataset_id, vector_settings.id)
        # Rows read by this query, by record id: (updated_at, vector), or None when the row has gone.
        local: dict[str, tuple[str, np.ndarray | None] | None] = {}
        for _ in range(3):  # a second round only when another request raced this one on the same rows
            with _VECTORS.lock:
                rows = _VECTORS.block(cache_key, dims).rows
                unknown = [
                    key
                    for key, stamp in candidates
                    if key not in local and rows.get(key, ("",))[0] != stamp
                ]
            if not unknown:
                break
            whole = len(unknown) > max(_IN_CHUNK, _FETCH_ALL_FRACTION * len(candidates))
            fetched = await _fetch_vectors(db, vector_settings.id, None if whole else unknown, dims)
            local.update(dict.fromkeys(unknown))
            local.update({key: (stamp, row) for key, stamp, row in fetched})
            with _VECTORS.lock:
                _VECTORS.block(cache_key, dims).put(fetched)
        with _VECTORS.lock:
            block = _VECTORS.block(cache_key, dims)
            cached: list[int] = []
            cached_at: list[int] = []
            extra: list[np.ndarray] = []
            extra_at: list[int] = []
            for position, (key, stamp) in enumerate(candidates):
                entry = block.rows.get(key)
                mine = local.get(key)
                if entry is not None and entry[0] == (stamp if mine is None else mine[0]):
                    if entry[1] >= 0:
                        cached.append(entry[1])
                        cached_at.append(position)
                elif mine is not None and mine[1] is not None and mine[1].shape == (dims,):
                    extra.append(mine[1])  # our fresh row, replaced in the cache meanwhile by another request
                    extra_at.append(position)
            scores = np.full(len(candidates), np.nan)
            scores[cached_at] = block.scores(np.asarray(cached, dtype=np.int64), vector)
            if extra:
                side = _VectorBlock(dims)
                side.put([(str(i), "", row) for i, row in enumerate(extra)])
                scores[extra_at] = side.scores(np.arange(len(extra)), vector)
            _VECTORS.trim()
        present = np.flatnonzero(~np.isnan(scores))
        best = present[_top_k(scores[present], k)]
        return [(UUID(candidates[i][0]), float(scores[i])) for i in best]


async def _fetch_vectors(
    db: AsyncSession, settings_id: UUID, keys: Sequence[str] | None, dims: int
) -> list[tuple[str, str, np.ndarray | None]]:
    """(record id, updated_at, decoded vector) of the given records, or of every record when keys is None."""
    columns = (cast(Vector.record_id, Text), cast(Vector.updated_at, Text), cast(Vector.value, Text))
    base = select(*columns).where(Vector.vector_settings_id == settings_id)
    out: list[tuple[str, str, np.ndarray | None]] = []

    def decode(rows: Sequence[Any]) -> None:  # batch by batch: the JSON text is ~8 KB per 384-d vector
        vectors = _parse_vectors([text for _, _, text in rows], dims)
        out.extend((key, stamp, row) for (key, stamp, _), row in zip(rows, vectors, strict=True))

    if keys is None:
        result = await db.stream(base.execution_options(yield_per=BATCH_SIZE))
        async for partition in result.partitions(BATCH_SIZE):
            decode(partition)
    else:
        for start in range(0, len(keys), _IN_CHUNK):
            ids = [UUID(key) for key in keys[start : start + _IN_CHUNK]]
            decode((await db.execute(base.where(Vector.record_id.in_(ids)))).all())
    return out


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
