"""Similarity search: one matrix-vector product over the cached vectors, then top k among the allowed rows.

The decoded vectors of a vector settings live in a cached block (``vectors.py``). Why it never serves a
stale vector: before every query the engine reads a fingerprint of the settings' vector rows, the count,
the latest ``updated_at`` and a sum over every row's ``updated_at``, an aggregate read from a covering
index, without touching the stored vectors (~8 KB of JSON each). A block is used as is only when it was
last brought up to date under exactly that fingerprint. Otherwise the block is reconciled with a listing
of (record id, ``updated_at``) of every row: rows it lacks or holds in another version are fetched and
decoded, rows that are gone are dropped, and it takes the fingerprint read before that listing (so a write
racing the refresh leaves a fingerprint that no longer matches, and the next query refreshes again).
Argilla bumps ``updated_at`` on every write of a vector row (its upserts set a fresh ``utcnow()``; ORM
updates have ``onupdate=utcnow``), and inserts raise the count, deletes lower it, updates change the sum:
every write, from any process (web server, rq worker), changes the fingerprint. Refreshes of a block are
serialised per event loop, so two requests never reconcile it at once.

A cold block (a server start) first takes its saved snapshot (``snapshots.py``), which carries the
fingerprint it was read under, so an unchanged database costs one file read instead of decoding every
vector's JSON again (~25 s at 100k); the server warms every block this way when it starts (``warm``).
Decoding runs in a worker thread (numpy's parse releases the GIL), so other requests go on meanwhile.

With a filter or text query, SQL is first asked which of the best-scored few hundred rows it allows (exact:
see ``_best_allowed``); only when fewer than k of 16k pass does it list every allowed record id, as one
concatenated string that becomes a boolean mask over the block's rows. The query's record is masked out.
Ties in score keep the block's row order (insertion order of the records at the first load).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.enums import SimilarityOrder
from argilla_server.models import Dataset, Record, Vector, VectorSettings
from argilla_server.search_engine.base import Filter, TextQuery
from sqlalchemy import Float, Integer, Text, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import snapshots
from .filters import where as filter_where
from .fulltext import text_ids
from .schema import DatasetQuery
from .text import TextSearch
from .vectors import VECTORS, VectorBlock, parse_vector, parse_vectors, top_k

_BATCH = 1000  # rows per round trip when a scan streams vectors
_FETCH_ALL_FRACTION = 0.25  # more unknown rows than this share of all: reload every vector in one stream
_IN_CHUNK = 500  # record ids per IN (...) when fetching a few vectors
_FIRST_PREFIX = 256  # best-scored rows a filter is first asked about (8 k when k is larger)
_MAX_PREFIX = 16_384  # beyond this many, list what the filter allows instead
_REFRESH_LOCKS: dict[tuple[int, Any], asyncio.Lock] = {}
_SAVING: set[asyncio.Future] = set()  # snapshot writes in flight (a reference keeps each alive)

CacheKey = tuple[UUID, UUID]  # (dataset id, vector settings id)


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
    dims = int(vector_settings.dimensions)
    if k <= 0 or vector.shape != (dims,):
        return []
    cache_key = (vector_settings.dataset_id, vector_settings.id)
    await _refresh(db, vector_settings.id, cache_key, dims)
    excluded = _key_text(q, record.id) if record is not None else None
    with VECTORS.lock:
        block = VECTORS.block(cache_key, dims)
        positions = np.flatnonzero(_mask(block, None, excluded))
        keys = [block.keys[i] for i in positions]
        scores = block.scores(vector)[positions]
    text = TextSearch.parse(query, q.schema)
    if filter is not None or text is not None:
        narrowed = await _best_allowed(db, q, filter, text, keys, scores, k)
        if narrowed is None:  # a selective filter: narrow first, then rank
            allowed = await _allowed_keys(db, q, filter, text)
            with VECTORS.lock:
                block = VECTORS.block(cache_key, dims)
                positions = np.flatnonzero(_mask(block, allowed, excluded))
                keys = [block.keys[i] for i in positions]
                scores = block.scores(vector)[positions]
        else:
            keys, scores = narrowed
    with VECTORS.lock:
        VECTORS.trim()
    return [(UUID(keys[i]), float(scores[i])) for i in top_k(scores, k)]


async def _best_allowed(
    db: AsyncSession,
    q: DatasetQuery,
    filter: Filter | None,
    text: TextSearch | None,
    keys: list[str],
    scores: np.ndarray,
    k: int,
) -> tuple[list[str], np.ndarray] | None:
    """The allowed ones among the best-scored rows, when at least k of them pass; None: too few do.

    Why: a filter that lets most records through (a metadata term, a split) costs a full pass over the
    records' JSON to list; asking it only about the best few hundred rows by score is exact, since rows
    outside that prefix of the ranking (score, then row order) all rank below every row inside it.
    """
    size = max(_FIRST_PREFIX, 8 * k)
    while True:
        prefix = top_k(scores, min(size, len(scores)))
        passing = await _passing(db, q, filter, text, [keys[i] for i in prefix])
        chosen = [i for i in prefix if keys[i] in passing]
        if len(chosen) >= k or len(prefix) == len(scores):
            return [keys[i] for i in chosen], scores[np.asarray(chosen, dtype=np.int64)]
        size *= 8
        if size > _MAX_PREFIX:
            return None


async def _passing(
    db: AsyncSession, q: DatasetQuery, filter: Filter | None, text: TextSearch | None, keys: list[str]
) -> set[str]:
    """Which of these record ids (as text) the filter and text query allow."""
    where = and_(filter_where(q, filter, by_id=True), Record.id.in_([UUID(key) for key in keys]))
    if text is not None:
        return {_key_text(q, record_id) for record_id in await text_ids(db, q, where, text)}
    return {
        _key_text(q, record_id) for record_id in (await db.execute(select(Record.id).where(where))).scalars()
    }


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


def _key_text(q: DatasetQuery, record_id: UUID) -> str:
    """A record id as the database renders it in text (the block's keys): dashed on PostgreSQL, hex on SQLite."""
    return str(record_id) if q.json.postgresql else record_id.hex


async def _allowed_keys(
    db: AsyncSession, q: DatasetQuery, filter: Filter | None, text: TextSearch | None
) -> np.ndarray | None:
    """The record ids (as text, in a bytes array) the filter and text query allow; None: no narrowing.

    Why one concatenated string: a filter often allows most of the dataset (90k of 100k ids); one
    group_concat / string_agg value split by numpy costs a fraction of 90k rows through the driver.
    """
    if filter is None and text is None:
        return None
    where = filter_where(q, filter)
    if text is not None:
        keys = [_key_text(q, record_id) for record_id in await text_ids(db, q, where, text)]
        return np.asarray(keys, dtype="S")
    concat = func.string_agg if q.json.postgresql else func.group_concat
    joined = (await db.execute(select(concat(cast(Record.id, Text), "")).where(where))).scalar() or ""
    width = 36 if q.json.postgresql else 32  # a uuid in text: dashed on PostgreSQL, 32 hex on SQLite
    return np.frombuffer(joined.encode("ascii"), dtype=f"S{width}")


def _mask(block: VectorBlock, allowed: np.ndarray | None, excluded: str | None) -> np.ndarray:
    """Live rows of the block that the query may return."""
    if allowed is None:
        mask = block.live[: block.used].copy()
    else:
        mask = np.zeros(block.used, dtype=bool)
        mask[block.rows_of(allowed)] = True
    if excluded is not None:  # a record is never its own neighbour
        entry = block.rows.get(excluded)
        if entry is not None and entry[1] >= 0:
            mask[entry[1]] = False
    return mask


async def _fingerprint(db: AsyncSession, settings_id: UUID) -> tuple:
    """(count, latest updated_at, sum of updated_at) of the settings' vector rows: any write changes it."""
    if db.bind.dialect.name == "postgresql":
        moments = [func.extract("epoch", Vector.updated_at)]  # microsecond precision
    else:  # julianday() keeps milliseconds: the stored text's microsecond digits are summed apart
        micros = func.substr(cast(Vector.updated_at, Text), 21, 6)
        moments = [func.julianday(Vector.updated_at), cast(micros, Integer)]
    sums = [cast(func.sum(moment), Float) for moment in moments]
    stmt = select(func.count(), cast(func.max(Vector.updated_at), Text), *sums)
    row = (await db.execute(stmt.where(Vector.vector_settings_id == settings_id))).one()
    return tuple(row)


def _refresh_lock(cache_key: CacheKey) -> asyncio.Lock:
    """One lock per event loop and block (an asyncio lock cannot be shared between loops)."""
    key = (id(asyncio.get_running_loop()), cache_key)
    lock = _REFRESH_LOCKS.get(key)
    if lock is None:
        lock = _REFRESH_LOCKS[key] = asyncio.Lock()
    return lock


async def _refresh(db: AsyncSession, settings_id: UUID, cache_key: CacheKey, dims: int) -> None:
    """Bring the block up to date with the database unless its fingerprint says it already is."""
    fingerprint = await _fingerprint(db, settings_id)
    with VECTORS.lock:
        if VECTORS.block(cache_key, dims).fingerprint == fingerprint:
            return
    async with _refresh_lock(cache_key):
        fingerprint = await _fingerprint(db, settings_id)  # read before the listing: see the docstring
        await _restore(cache_key, dims)
        with VECTORS.lock:
            if VECTORS.block(cache_key, dims).fingerprint == fingerprint:
                return
        listing = await _listing(db, settings_id)
        with VECTORS.lock:
            block = VECTORS.block(cache_key, dims)
            unknown = [key for key, stamp in listing if block.rows.get(key, ("",))[0] != stamp]
            gone = set(block.rows).difference(key for key, _ in listing)
        whole = len(unknown) > max(_IN_CHUNK, _FETCH_ALL_FRACTION * len(listing))
        fetched = await _fetch_vectors(db, settings_id, None if whole else unknown, dims)
        with VECTORS.lock:
            block = VECTORS.fresh_block(cache_key, dims) if whole else VECTORS.block(cache_key, dims)
            block.drop(list(gone))
            block.put(fetched)
            block.fingerprint = fingerprint
            block.unsaved += len(fetched) + len(gone)
            snapshot = _due_snapshot(block)
        if snapshot is not None:  # written in a thread: the query does not wait for the disk
            saving = asyncio.get_running_loop().run_in_executor(None, snapshots.save, cache_key, snapshot)
            _SAVING.add(saving)
            saving.add_done_callback(_SAVING.discard)


def _due_snapshot(block: VectorBlock) -> snapshots.Snapshot | None:
    """A copy of the block to save, when enough rows changed since the last save and not too recently."""
    now = time.monotonic()
    if block.unsaved < snapshots.SAVE_MIN_ROWS:
        return None
    if block.saved_at is not None and now - block.saved_at < snapshots.SAVE_EVERY_S:
        return None
    block.unsaved, block.saved_at = 0, now
    return snapshots.Snapshot(*block.live_rows(), fingerprint=block.fingerprint)


async def _restore(cache_key: CacheKey, dims: int) -> None:
    """A block that holds nothing yet starts from its saved snapshot, when there is one, under the
    fingerprint it was saved with (a database that still shows it needs no listing at all)."""
    with VECTORS.lock:
        block = VECTORS.block(cache_key, dims)
        if block.rows or block.fingerprint is not None:
            return
    saved = await asyncio.to_thread(snapshots.load, cache_key, dims)
    if saved is None:
        return
    with VECTORS.lock:
        block = VECTORS.block(cache_key, dims)
        if not block.rows and block.fingerprint is None:
            block.restore(saved.keys, saved.stamps, saved.matrix, saved.norms)
            block.fingerprint = saved.fingerprint


def forget_vectors(dataset_id: UUID) -> None:
    """Drop a deleted dataset's blocks from the cache and from disk."""
    with VECTORS.lock:
        for key in [key for key in VECTORS.blocks if key[0] == dataset_id]:
            del VECTORS.blocks[key]
    snapshots.forget_dataset(dataset_id)


async def warm(db: AsyncSession) -> tuple[int, int]:
    """Bring the blocks of every vector settings up to date, most recently updated datasets first, while
    they fit in the cache's budget; returns (blocks, vectors). Run at server start, so the first similarity
    query a curator sends finds its block ready."""
    stmt = (
        select(VectorSettings.id, VectorSettings.dataset_id, VectorSettings.dimensions, func.count(Vector.id))
        .join(Vector, Vector.vector_settings_id == VectorSettings.id)
        .join(Dataset, Dataset.id == VectorSettings.dataset_id)
        .group_by(VectorSettings.id, VectorSettings.dataset_id, VectorSettings.dimensions, Dataset.updated_at)
        .order_by(Dataset.updated_at.desc())
    )
    blocks = vectors = used = 0
    for settings_id, dataset_id, dims, count in (await db.execute(stmt)).all():
        used += count * int(dims) * 4
        if used > VECTORS.budget:
            break
        await _refresh(db, settings_id, (dataset_id, settings_id), int(dims))
        blocks, vectors = blocks + 1, vectors + count
    return blocks, vectors


async def _listing(db: AsyncSession, settings_id: UUID) -> list[tuple[str, str]]:
    """(record id, updated_at) as text of every vector row of the settings, read from a covering index.

    In no particular order: rows a block lacks are appended in the order they are fetched, and a whole
    reload orders its rows itself (``_fetch_vectors``); sorting by the records' insertion order here cost
    a join and a sort (~1 s at 100k rows)."""
    stmt = select(cast(Vector.record_id, Text), cast(Vector.updated_at, Text)).where(
        Vector.vector_settings_id == settings_id
    )
    return [tuple(row) for row in (await db.execute(stmt)).all()]


async def _fetch_vectors(
    db: AsyncSession, settings_id: UUID, keys: Sequence[str] | None, dims: int
) -> list[tuple[str, str, np.ndarray | None]]:
    """(record id, updated_at, decoded vector) of the given records, or of every record when keys is None
    (then in the records' insertion order, which becomes the block's row order)."""
    columns = (cast(Vector.record_id, Text), cast(Vector.updated_at, Text), cast(Vector.value, Text))
    base = select(*columns).where(Vector.vector_settings_id == settings_id)
    out: list[tuple[str, str, np.ndarray | None]] = []

    async def decode(rows: Sequence[Any]) -> None:
        """Batch by batch (the JSON text is ~8 KB per 384-d vector), in a thread: numpy's parse releases
        the GIL, so the server keeps answering other requests meanwhile."""
        vectors = await asyncio.to_thread(parse_vectors, [text for _, _, text in rows], dims)
        out.extend((key, stamp, row) for (key, stamp, _), row in zip(rows, vectors, strict=True))

    if keys is None:
        ordered = base.join(Record, Record.id == Vector.record_id).order_by(
            Record.inserted_at.asc(), Record.id.asc()
        )
        result = await db.stream(ordered.execution_options(yield_per=_BATCH))
        async for partition in result.partitions(_BATCH):
            await decode(partition)
    else:
        for start in range(0, len(keys), _IN_CHUNK):
            ids = [UUID(key) for key in keys[start : start + _IN_CHUNK]]
            await decode((await db.execute(base.where(Vector.record_id.in_(ids)))).all())
    return out
