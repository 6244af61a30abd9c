"""Record search: filtered in SQL, then sorted by the sort keys, by text relevance, or per user at random.

With no sort: relevance order for a text query; on ``/me`` without a query, a fixed pseudo-random order
per (user, record), so overlapping annotators see different orders.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from argilla_server.models import Record
from argilla_server.search_engine.base import (
    Filter,
    Order,
    SearchResponseItem,
    SearchResponses,
    TextQuery,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .filters import where as filter_where
from .schema import DatasetQuery
from .sorting import order_by
from .text import Bm25, TextSearch

BATCH_SIZE = 1000  # rows per round trip when a scan streams fields or vectors

Hits = list[tuple[UUID, float | None]]


async def search_records(
    db: AsyncSession,
    q: DatasetQuery,
    query: TextQuery | str | None,
    filter: Filter | None,
    sort: list[Order] | None,
    *,
    offset: int,
    limit: int,
    user_id: Any,
) -> SearchResponses:
    """One page of the matching records and the full hit count."""
    text = TextSearch.parse(query, q.schema)
    where = filter_where(q, filter)
    if text is not None:
        return _page(await text_hits(db, q, where, text, sort), offset, limit)
    if user_id is not None and not sort:
        ids = list((await db.execute(select(Record.id).where(where))).scalars())
        ids.sort(key=lambda record_id: user_order_key(user_id, record_id))
        return _page([(record_id, None) for record_id in ids], offset, limit)
    total = (await db.execute(select(func.count()).select_from(Record).where(where))).scalar_one()
    stmt = select(Record.id).where(where).order_by(*order_by(q, sort)).offset(offset).limit(limit)
    items = [SearchResponseItem(record_id=record_id) for record_id in (await db.execute(stmt)).scalars()]
    return SearchResponses(items=items, total=total)


async def text_hits(
    db: AsyncSession, q: DatasetQuery, where: ColumnElement, text: TextSearch, sort: list[Order] | None
) -> Hits:
    """Stream the candidates' fields in sort order, keep those that match, score by BM25."""
    bm25 = Bm25(text.positive_tokens)
    stmt = select(Record.id, Record.fields).where(where).order_by(*order_by(q, sort))
    async for record_id, fields in _stream(db, stmt):
        doc = text.field_tokens(fields)
        tf, length = bm25.observe(doc)
        if text.matches(doc):
            bm25.add(record_id, tf, length)
    hits = bm25.scored()
    if not sort:
        hits.sort(key=lambda hit: -hit[1])  # stable: equal scores keep insertion order
    return hits


def user_order_key(user_id: Any, record_id: UUID) -> bytes:
    """A fixed pseudo-random position per (user, record): overlapping annotators see different orders."""
    return hashlib.blake2b(f"{user_id}:{record_id}".encode(), digest_size=8).digest()


async def _stream(db: AsyncSession, stmt: Any) -> AsyncIterator[Any]:
    """Rows in batches, so a large dataset never sits in memory at once."""
    result = await db.stream(stmt.execution_options(yield_per=BATCH_SIZE))
    async for partition in result.partitions(BATCH_SIZE):
        for row in partition:
            yield row


def _page(hits: Hits, offset: int, limit: int) -> SearchResponses:
    window = hits[offset : offset + limit]
    return SearchResponses(
        items=[SearchResponseItem(record_id=rid, score=score) for rid, score in window], total=len(hits)
    )
