"""Record search: filtered, counted, ordered and paged in SQL; text queries through the database's text index.

With no sort: relevance order for a text query (``fulltext.py``); on ``/me`` without a query, a fixed
pseudo-random order per user, so overlapping annotators see different orders.

That per-user order is an SQL sort key, not a hash of every (user, record) in Python (which loaded and
hashed every matching id: 1.1 s for a 50k-record pending queue). Argilla's record ids are uuid4, so their
hex digits are random: the key is three 3-digit windows of the id, at offsets picked by a hash of the user
id (ties broken by the id). Each user thus sees a fixed order, and two users' orders are unrelated unless
their three offsets coincide (one chance in ~24,000). Measured on 100k records (SQLite), sorting by that key
costs ~40 ms over the filtered rows, about what the total's count costs anyway; eight 1-digit windows cost
twice that. A rotation of the id order at a per-user pivot (``id >= pivot``) would let the page come straight
from an index, but users whose pivots fall between the same two ids share one order (one chance in n for
n records: a small queue would often look the same to everybody). PostgreSQL reads the windows from the
uuid's 16 bytes (``uuid_send``: four 1-byte windows, ~43,000 choices) rather than from its text, which
costs twice as much there.
"""

from __future__ import annotations

import hashlib
from typing import Any

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
from .fulltext import text_page
from .schema import DatasetQuery
from .sorting import order_by
from .text import TextSearch

BATCH_SIZE = 1000  # rows per round trip when a scan streams vectors
_WINDOWS, _WIDTH = 3, 3  # the per-user key: 3 windows of 3 hex digits (36 bits; ties go to the id)


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
        hits, total = await text_page(db, q, where, text, sort, offset=offset, limit=limit)
        items = [SearchResponseItem(record_id=record_id, score=score) for record_id, score in hits]
        return SearchResponses(items=items, total=total)
    ordering = user_order(q, user_id) if user_id is not None and not sort else order_by(q, sort)
    total = (await db.execute(select(func.count()).select_from(Record).where(where))).scalar_one()
    stmt = select(Record.id).where(where).order_by(*ordering).offset(offset).limit(limit)
    items = [SearchResponseItem(record_id=record_id) for record_id in (await db.execute(stmt)).scalars()]
    return SearchResponses(items=items, total=total)


def user_order(q: DatasetQuery, user_id: Any) -> list[ColumnElement]:
    """ORDER BY a fixed pseudo-random order of the records per user (see the module docstring)."""
    digest = hashlib.blake2b(str(user_id).encode(), digest_size=16).digest()
    if q.json.postgresql:
        source, count, width, length = func.uuid_send(Record.id), 4, 1, 16
    else:  # SQLite stores a uuid as 32 hex digits
        source, count, width, length = Record.id, _WINDOWS, _WIDTH, 32
    starts = sorted(range(length - width + 1), key=lambda i: (digest[i % 16] ^ i * 37) & 0xFF)[:count]
    key = func.substr(source, starts[0] + 1, width)
    for start in starts[1:]:
        key = key.op("||")(func.substr(source, start + 1, width))
    return [key, Record.id]
