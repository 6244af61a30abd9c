"""Similarity search: cosine scores in numpy over the filtered candidates, from the validated vector cache.

Why the cache can never serve stale vectors: every query still reads, in the same SQL statement that
applies its filter, the record id and the vector row's `updated_at` of every candidate (cheap columns;
no JSON is decoded). A cached vector is used only when it was read together with exactly that
`updated_at`; anything else (a new record, an updated vector) is fetched and decoded again, and deleted
records are simply no longer candidates. Argilla bumps `updated_at` on every write of a vector row: its
upserts (`CRUDMixin.upsert_many`, used by bulk record create/update, record PATCH and Hub import) set it
to a fresh `utcnow()`, and ORM updates have `onupdate=utcnow`. Validation is per row, so writes from any
process (web server, rq worker) and commits in any order are seen by the next query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.enums import SimilarityOrder
from argilla_server.models import Record, Vector, VectorSettings
from argilla_server.search_engine.base import Filter, TextQuery
from sqlalchemy import Text, and_, cast, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .filters import where as filter_where
from .fulltext import text_ids
from .schema import DatasetQuery
from .search import BATCH_SIZE
from .text import TextSearch
from .vectors import VECTORS, VectorBlock, parse_vector, parse_vectors, top_k

_FETCH_ALL_FRACTION = 0.25  # more unknown rows than this share of the candidates: reload the whole block
_IN_CHUNK = 500  # record ids per IN (...) when fetching a few vectors
_ROUNDS = 3  # a second round only when another request raced this one on the same rows

Candidates = list[tuple[str, str]]  # (record id, vector row's updated_at), both as the database renders text
# Rows read by this query, by record id: (updated_at, vector), or None when the row has gone.
Fetched = dict[str, tuple[str, np.ndarray | None] | None]


async def similar_records(
    db: AsyncSession,
    q: DatasetQuery,
    vector_settings: VectorSettings,
    vector: np.ndarray,
    *,
    record: Record | None,
    query: TextQuery | str | None,
    filter: Filter | None,
    k: int,
) -> list[tuple[UUID, float]]:
    """The k best (record id, score) among the records the filter and text query allow, best first."""
    where = filter_where(q, filter)
    if record is not None:
        where = and_(where, Record.id != record.id)  # a record is never its own neighbour
    allowed = await _text_allowed(db, q, where, query)
    return await _nearest(db, where, vector_settings, vector, k, allowed)


def query_vector(value: list[float] | None, stored: np.ndarray | None, order: SimilarityOrder) -> np.ndarray:
    """The vector to compare with: the given value or the record's stored one, negated for least similar."""
    vector = np.asarray(value, dtype=np.float64) if value else stored
    if vector is None or vector.size == 0:
        raise ValueError("Cannot find a vector value to apply with provided info")
    return -vector if order == SimilarityOrder.least_similar else vector


async def record_vector(
    db: AsyncSession, record: Record, vector_settings: VectorSettings
) -> np.ndarray | None:
    """The record's stored vector for these settings, or None."""
    stmt = select(cast(Vector.value, Text)).where(
        Vector.record_id == record.id, Vector.vector_settings_id == vector_settings.id
    )
    return parse_vector((await db.execute(stmt)).scalar())


async def _text_allowed(
    db: AsyncSession, q: DatasetQuery, where: ColumnElement, query: Any
) -> set[UUID] | None:
    text = TextSearch.parse(query, q.schema)
    if text is None:
        return None
    return await text_ids(db, q, where, text)


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
    candidates = await _candidates(db, where, vector_settings.id, allowed)
    cache_key = (vector_settings.dataset_id, vector_settings.id)
    local = await _refresh(db, vector_settings.id, cache_key, dims, candidates)
    scores = _scores(cache_key, dims, candidates, local, vector)
    present = np.flatnonzero(~np.isnan(scores))
    best = present[top_k(scores[present], k)]
    return [(UUID(candidates[i][0]), float(scores[i])) for i in best]


async def _candidates(
    db: AsyncSession, where: ColumnElement, settings_id: UUID, allowed: set[UUID] | None
) -> Candidates:
    """The filtered records that have a vector row, in insertion order (ties in score keep this order)."""
    stmt = (
        select(cast(Vector.record_id, Text), cast(Vector.updated_at, Text))
        .join(Record, Record.id == Vector.record_id)
        .where(Vector.vector_settings_id == settings_id, where)
        .order_by(Record.inserted_at.asc(), Record.id.asc())
    )
    candidates: Candidates = [tuple(row) for row in (await db.execute(stmt)).all()]
    if allowed is not None:
        candidates = [(key, stamp) for key, stamp in candidates if UUID(key) in allowed]
    return candidates


async def _refresh(
    db: AsyncSession, settings_id: UUID, cache_key: tuple[UUID, UUID], dims: int, candidates: Candidates
) -> Fetched:
    """Fetch and cache the candidates whose cached row is missing or older; returns the rows read here."""
    local: Fetched = {}
    for _ in range(_ROUNDS):
        with VECTORS.lock:
            rows = VECTORS.block(cache_key, dims).rows
            unknown = [
                key for key, stamp in candidates if key not in local and rows.get(key, ("",))[0] != stamp
            ]
        if not unknown:
            break
        whole = len(unknown) > max(_IN_CHUNK, _FETCH_ALL_FRACTION * len(candidates))
        fetched = await _fetch_vectors(db, settings_id, None if whole else unknown, dims)
        local.update(dict.fromkeys(unknown))
        local.update({key: (stamp, row) for key, stamp, row in fetched})
        with VECTORS.lock:
            VECTORS.block(cache_key, dims).put(fetched)
    return local


def _scores(
    cache_key: tuple[UUID, UUID], dims: int, candidates: Candidates, local: Fetched, vector: np.ndarray
) -> np.ndarray:
    """A score per candidate (NaN: no usable vector) from the cache, or from rows read here when the cache
    already holds another request's version of them."""
    with VECTORS.lock:
        block = VECTORS.block(cache_key, dims)
        cached, cached_at, extra, extra_at = _sources(block, candidates, local, dims)
        scores = np.full(len(candidates), np.nan)
        scores[cached_at] = block.scores(np.asarray(cached, dtype=np.int64), vector)
        if extra:
            side = VectorBlock(dims)
            side.put([(str(i), "", row) for i, row in enumerate(extra)])
            scores[extra_at] = side.scores(np.arange(len(extra)), vector)
        VECTORS.trim()
    return scores


def _sources(
    block: VectorBlock, candidates: Candidates, local: Fetched, dims: int
) -> tuple[list[int], list[int], list[np.ndarray], list[int]]:
    """Cache rows (and candidate positions) valid for this query, and this query's own rows elsewhere."""
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
    return cached, cached_at, extra, extra_at


async def _fetch_vectors(
    db: AsyncSession, settings_id: UUID, keys: Sequence[str] | None, dims: int
) -> list[tuple[str, str, np.ndarray | None]]:
    """(record id, updated_at, decoded vector) of the given records, or of every record when keys is None."""
    columns = (cast(Vector.record_id, Text), cast(Vector.updated_at, Text), cast(Vector.value, Text))
    base = select(*columns).where(Vector.vector_settings_id == settings_id)
    out: list[tuple[str, str, np.ndarray | None]] = []

    def decode(rows: Sequence[Any]) -> None:  # batch by batch: the JSON text is ~8 KB per 384-d vector
        vectors = parse_vectors([text for _, _, text in rows], dims)
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
