"""Text queries answered by the database's full-text index (``indexes.py``): match, count, rank and page in SQL.

A parsed ``TextSearch`` (an OR of alternatives, each an AND of clauses: terms, "phrases", prefix*, -negated)
becomes an FTS5 MATCH expression on SQLite, restricted to the dataset's scope token and to the columns of
all its fields or of the one field a query names, or a ``to_tsquery`` on PostgreSQL over the dataset's
all-fields rows or the named field's rows. On SQLite every alternative carries the scope as a positive
term, so an alternative of negated clauses only ("-spam") is exact too (PostgreSQL's ``!`` needs none). With no sort
the order is the database's relevance (FTS5 ``bm25()``, PostgreSQL ``ts_rank``), reported as the score;
ties, and every sort, end with insertion order so pages are stable.

Words are the engine's ``\\w+`` tokens, case-folded; both indexes are configured to cut text the same way
(see ``indexes.py``). Relevance differs from Elasticsearch's BM25 in its statistics (FTS5 counts the whole
index; ``ts_rank`` normalises no length), not in which records match.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from argilla_server.models import Record
from argilla_server.search_engine.base import Order
from sqlalchemy import Float, bindparam, column, false, func, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .indexes import PG_UNDERSCORE, SQLITE_COLUMNS
from .schema import DatasetQuery
from .sorting import order_by
from .text import Clause, TextSearch

Hits = list[tuple[UUID, float | None]]

_ROWS = table("assay_text_rows", column("id"), column("record_id"), column("scope"), column("tsv"))
_FTS = table("assay_text", column("rowid"))
_FIELDS = table("assay_text_fields", column("field_id"), column("col"))


def scope_of(q: DatasetQuery, text: TextSearch) -> str:
    """PostgreSQL's index rows a query reads: one field's (``f<id>``) or the dataset's all-fields rows."""
    if text.field:
        return "f" + _hex(q.schema.field_ids[text.field], q)
    return "d" + _hex(q.dataset_id, q)


async def _columns(db: AsyncSession, q: DatasetQuery, text: TextSearch) -> str | None:
    """SQLite's FTS5 column filter: every field column, or the named field's (None: it has no column)."""
    if not text.field:
        return "{" + " ".join(f"c{i}" for i in range(SQLITE_COLUMNS)) + "}"
    stmt = select(_FIELDS.c.col).where(_FIELDS.c.field_id == q.schema.field_ids[text.field].hex)
    col = (await db.execute(stmt)).scalar()
    return None if col is None or col >= SQLITE_COLUMNS else "{c" + str(col) + "}"


def _hex(value: UUID, q: DatasetQuery) -> str:
    """A uuid as the database renders it in text: dashed on PostgreSQL, 32 hex digits on SQLite."""
    return str(value) if q.json.postgresql else value.hex


# SQLite FTS5 -------------------------------------------------------------------------------------------


def _fts_string(words: tuple[str, ...] | list[str]) -> str:
    return '"' + " ".join(words).replace('"', '""') + '"'


def _fts_clause(clause: Clause, columns: str) -> str:
    if clause.phrase:
        return f"{columns} : " + _fts_string(clause.tokens)
    parts = [
        f"{columns} : "
        + _fts_string([token])
        + (" *" if clause.prefix and i == len(clause.tokens) - 1 else "")
        for i, token in enumerate(clause.tokens)
    ]
    return "(" + " AND ".join(parts) + ")"


def fts_match(text: TextSearch, scope: str, columns: str) -> str:
    """The MATCH expression: alternatives ORed, each its scope AND the positive clauses, NOT the negated."""
    alternatives = []
    for alternative in text.alternatives:
        positive = [f"scope : {_fts_string([scope])}"]
        positive += [_fts_clause(c, columns) for c in alternative if not c.negated]
        expression = "(" + " AND ".join(positive) + ")"
        for clause in (c for c in alternative if c.negated):
            expression = f"({expression} NOT {_fts_clause(clause, columns)})"
        alternatives.append(expression)
    return " OR ".join(alternatives)


# PostgreSQL tsquery --------------------------------------------------------------------------------------


def _lexeme(token: str, prefix: bool = False) -> str:
    # "_" is spelled as in the index (the parser would split the word there); tokens hold no quote.
    return "'" + token.replace("_", PG_UNDERSCORE) + "'" + (":*" if prefix else "")


def _ts_clause(clause: Clause) -> str:
    if clause.phrase:
        return "(" + " <-> ".join(_lexeme(token) for token in clause.tokens) + ")"
    last = len(clause.tokens) - 1
    return (
        "(" + " & ".join(_lexeme(t, clause.prefix and i == last) for i, t in enumerate(clause.tokens)) + ")"
    )


def ts_query(text: TextSearch) -> str:
    """The to_tsquery text: alternatives ORed, each an AND of clauses (negated ones with !)."""
    alternatives = []
    for alternative in text.alternatives:
        parts = [("!" if c.negated else "") + _ts_clause(c) for c in alternative]
        alternatives.append("(" + " & ".join(parts) + ")")
    return " | ".join(alternatives)


# Queries ----------------------------------------------------------------------------------------------


async def _matches(
    db: AsyncSession, q: DatasetQuery, text: TextSearch
) -> tuple[Any, ColumnElement, ColumnElement]:
    """(FROM clause joined to records, the match condition, the relevance score: higher is better)."""
    if q.json.postgresql:
        tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("tsq", ts_query(text)))
        source = _ROWS.join(Record, Record.id == _ROWS.c.record_id)
        condition = (_ROWS.c.scope == scope_of(q, text)) & _ROWS.c.tsv.op("@@")(tsquery)
        score = func.ts_rank(_ROWS.c.tsv, tsquery, type_=Float)
        return source, condition, score
    source = _FTS.join(_ROWS, _ROWS.c.id == _FTS.c.rowid).join(Record, Record.id == _ROWS.c.record_id)
    columns = await _columns(db, q, text)
    if columns is None:
        condition: ColumnElement = false()
    else:
        match = fts_match(text, "d" + q.dataset_id.hex, columns)
        condition = literal_column("assay_text").op("MATCH")(bindparam("fts", match))
    weights = ", ".join(["0.0"] + ["1.0"] * SQLITE_COLUMNS)  # the scope token never counts
    score = -literal_column(f"bm25(assay_text, {weights})", type_=Float)
    return source, condition, score


async def text_page(
    db: AsyncSession,
    q: DatasetQuery,
    where: ColumnElement,
    text: TextSearch,
    sort: list[Order] | None,
    *,
    offset: int,
    limit: int,
) -> tuple[Hits, int]:
    """One page of matching records (relevance order without sort) and the full hit count."""
    source, condition, score = await _matches(db, q, text)
    count = select(func.count()).select_from(source).where(condition, where)
    total = (await db.execute(count)).scalar_one()
    if total == 0 or limit <= 0:
        return [], total
    ordering = order_by(q, sort) if sort else [score.desc(), Record.inserted_at.asc(), Record.id.asc()]
    stmt = select(Record.id, score).select_from(source).where(condition, where)
    stmt = stmt.order_by(*ordering).offset(offset).limit(limit)
    return [(record_id, float(s)) for record_id, s in (await db.execute(stmt)).all()], total


async def text_ids(db: AsyncSession, q: DatasetQuery, where: ColumnElement, text: TextSearch) -> set[UUID]:
    """Every matching record id (the candidates of a similarity search)."""
    source, condition, _ = await _matches(db, q, text)
    stmt = select(Record.id).select_from(source).where(condition, where)
    return set((await db.execute(stmt)).scalars())
