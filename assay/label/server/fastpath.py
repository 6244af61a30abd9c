"""Speed-ups for argilla-server 2.8 that change no stored data; together they more than double push speed.

1. Skip building webhook event payloads while no enabled webhook subscribes to the event.

argilla-server 2.8 builds a full event payload (a dataset query with five eager loads plus a pydantic dump)
for every record, response and dataset change, and only then asks whether any webhook is enabled. With no
webhook configured that is about 60 % of a bulk record upload. These wrappers ask first. The answer is read
from the database at call time and cached only for the current database session (one request or job), so a
webhook added later is served from the next request on.

2. Reuse one pydantic TypeAdapter for question and metadata-property settings. ``parsed_settings`` built a
new adapter (a full schema build, ~4 ms) on every access, several times per record during validation.
Each object also keeps its parsed settings while its settings stay equal to those they were parsed from
(the validation of every metadata value of every record was still ~4 % of a push).

3. Upsert a bulk's suggestions and vectors with one compiled statement for every row (executemany).
``upsert_many`` built one INSERT ... VALUES with a row per suggestion, compiled anew for every request
(each has another number of rows), and loaded the inserted rows back as ORM objects that nothing reads
(the bulk loads the records' suggestions and vectors again before answering): ~14 % of the server's time
in a push. The SQL is the same upsert (ON CONFLICT of the same columns updates the same ones and
``updated_at``), ids and timestamps come from the same column defaults. On PostgreSQL the statement
returns the ids (which nothing reads), so SQLAlchemy sends the rows as multi-row statements, as the
original did (measured apart: ~80 µs of PostgreSQL's CPU per row run alone, ~27 in one statement). The
original still runs when the session already holds suggestions or vectors of these records, which a
statement that loads nothing back would leave stale.

4. Answer a bulk upsert with an empty item list when the client asks for it (header ``X-Assay-Bulk-Answer:
none``: assay's push reads nothing from the answer). The bulk then skips loading every record's responses,
suggestions and vectors back and serialising them (~25 % of the server's time in a push). What is stored
is the same; the preload still runs when a webhook listens to record events (their payloads read it), and
every other client gets the full answer.

5. In such a bulk (no answer, no webhook listening to record events, no item carrying responses), insert
the new records with one Core INSERT of every row instead of ORM objects flushed one by one (in a sampled
profile of a 10k push on SQLite the flush was 19 % of the server's CPU, reloading the new records for the
status update 9 % and the commit's bookkeeping 7 %). The rows are those argilla-server stores: the same
table and column types (so the same JSON and timestamp encodings), an id from the same ``uuid4`` default,
and ``status``, ``inserted_at`` and ``updated_at`` from the columns' own defaults, evaluated row by row
as in a flush. A new record without responses is ``pending`` under every distribution rule
(``min_submitted`` is at least 1), which is what the status update would set. Records the bulk finds (by
external id or id) are updated exactly as before, through the ORM, and get their status recomputed. On
PostgreSQL the INSERT carries RETURNING, so SQLAlchemy sends the rows as one multi-row statement (the
engine's statement-level triggers then index the bulk once, as after a flush); SQLite runs one prepared
statement per row (its triggers are per row anyway). A new record is validated as
``RecordCreateValidator`` does, with a stand-in that is not attached to the dataset (argilla's own
validation record joins ``dataset.records``, and every later flush then walks and warns about 500
transient records).

6. On PostgreSQL, plan a bulk upsert's statements for their values (``plan_cache_mode =
force_custom_plan`` for the bulk's transaction). asyncpg prepares each statement once per connection, and
after five runs PostgreSQL may keep a generic plan made while the dataset was small: looking up a bulk's
200 external ids then scanned the dataset's records (55-80 ms per bulk, and 15-20 ms for the lookup by
id, at the end of a 10k push: about as much as the bulk's INSERT with its triggers), growing with the
dataset.

Runs inside the argilla-server virtual environment (loaded by ``launcher.py``); imports only argilla_server
and what it brings (sqlalchemy, pydantic, fastapi).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from uuid import uuid4

from argilla_server.api.schemas.v1.questions import QuestionSettings
from argilla_server.api.schemas.v1.records_bulk import RecordsBulkWithUpdatedItemIds
from argilla_server.bulk import records_bulk
from argilla_server.bulk.records_bulk import CreateRecordsBulk, UpsertRecordsBulk
from argilla_server.contexts import distribution
from argilla_server.errors.future import UnprocessableEntityError
from argilla_server.models import MetadataProperty, Question, Record, Suggestion, Vector, Webhook
from argilla_server.models.metadata_properties import MetadataPropertySettings
from argilla_server.models.mixins import _INSERT_FUNC
from argilla_server.validators.records import RecordCreateValidator, RecordUpsertValidator
from argilla_server.webhooks.v1 import datasets, records, responses
from argilla_server.webhooks.v1.enums import RecordEvent
from fastapi.encoders import jsonable_encoder
from pydantic import TypeAdapter
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

_CACHE_KEY = "assay_enabled_webhook_events"


async def subscribed(db: AsyncSession, event: str) -> bool:
    """Whether an enabled webhook listens to `event` (cached for this session only)."""
    events = db.info.get(_CACHE_KEY)
    if events is None:
        rows = await db.execute(select(Webhook.events).where(Webhook.enabled.is_(True)))
        events = {str(name) for webhook_events in rows.scalars() for name in webhook_events or []}
        db.info[_CACHE_KEY] = events
    return str(event) in events


class _SkippedEvent:
    """Stands in for an event nobody listens to; `notify` enqueues nothing, like the original would."""

    async def notify(self, db: AsyncSession) -> list:
        return []


def _notify_wrapper(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def notify(db: AsyncSession, event: str, subject: Any) -> Any:
        if not await subscribed(db, event):
            return []
        return await original(db, event, subject)

    notify.__wrapped__ = original
    return notify


def _build_wrapper(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def build(db: AsyncSession, event: str, subject: Any) -> Any:
        if not await subscribed(db, event):
            return _SkippedEvent()
        return await original(db, event, subject)

    build.__wrapped__ = original
    return build


PARTS = ("settings", "webhooks", "bulk", "answer", "records")


def install(parts: str = "all") -> int:
    """Install the speed-ups: `all`, or a comma-separated choice of PARTS (for measuring); returns names
    patched."""
    chosen = set(PARTS) if parts == "all" else {part.strip() for part in parts.split(",")}
    unknown = chosen - set(PARTS)
    if unknown:
        raise ValueError(f"unknown fast path parts {sorted(unknown)}; known: all, {', '.join(PARTS)}")
    patched = 0
    if "settings" in chosen:
        patched += _install_settings_adapters()
    if "webhooks" in chosen:
        patched += _install_event_wrappers()
    if "bulk" in chosen:
        patched += _install_bulk_upserts()
    if "answer" in chosen:
        patched += _install_bulk_answer()
    if "records" in chosen:
        patched += _install_record_inserts()
    return patched


ANSWER_HEADER = (b"x-assay-bulk-answer", b"none")
_NO_ANSWER: ContextVar[bool] = ContextVar("assay_no_bulk_answer", default=False)


def answer_switch(app: Callable) -> Callable:
    """The ASGI app, noting for the request's code whether the client asked for no bulk answer."""

    async def switched(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or ANSWER_HEADER not in scope.get("headers", ()):
            return await app(scope, receive, send)
        token = _NO_ANSWER.set(True)
        try:
            await app(scope, receive, send)
        finally:
            _NO_ANSWER.reset(token)

    return switched


def _install_bulk_answer() -> int:
    preload, answer = (
        records_bulk._preload_records_relationships_before_index,
        records_bulk.RecordsBulkWithUpdatedItemIds,
    )

    async def preload_if_read(db: AsyncSession, records: list) -> None:
        if _NO_ANSWER.get() and not any(
            [await subscribed(db, e) for e in (RecordEvent.created, RecordEvent.updated)]
        ):
            return None
        await preload(db, records)

    def bulk_answer(items: list, updated_item_ids: list) -> Any:
        return answer(items=[] if _NO_ANSWER.get() else items, updated_item_ids=updated_item_ids)

    records_bulk._preload_records_relationships_before_index = preload_if_read
    records_bulk.RecordsBulkWithUpdatedItemIds = bulk_answer
    return 2


def _install_bulk_upserts() -> int:
    originals = CreateRecordsBulk._upsert_records_suggestions, CreateRecordsBulk._upsert_records_vectors

    async def suggestions(self: CreateRecordsBulk, pairs: list) -> list:
        rows = [dict(**s.model_dump(), record_id=record.id) for record, items in pairs for s in items or []]
        return await _upsert_rows(
            self, pairs, rows, Suggestion, (Suggestion.record_id, Suggestion.question_id), originals[0]
        )

    async def vectors(self: CreateRecordsBulk, pairs: list) -> list:
        rows = [
            {
                "value": value,
                "record_id": record.id,
                "vector_settings_id": record.dataset.vector_settings_by_name(name).id,
            }
            for record, items in pairs
            for name, value in (items or {}).items()
        ]
        return await _upsert_rows(
            self, pairs, rows, Vector, (Vector.record_id, Vector.vector_settings_id), originals[1]
        )

    CreateRecordsBulk._upsert_records_suggestions = suggestions
    CreateRecordsBulk._upsert_records_vectors = vectors
    return 2


async def _upsert_rows(
    bulk: CreateRecordsBulk, pairs: list, rows: list[dict], model: type, keys: tuple, original: Callable
) -> list:
    """One executemany upsert of the rows (the callers ignore the result), or the original on a session that
    holds rows of the model for these records."""
    if not rows:
        return []
    db: AsyncSession = bulk._db
    record_ids = {record.id for record, _ in pairs}
    if any(isinstance(held, model) and held.record_id in record_ids for held in db.identity_map.values()):
        return await original(bulk, pairs)
    insert = _INSERT_FUNC[db.bind.dialect.name](model.__table__)
    updated = {column: insert.excluded[column] for column in model.__upsertable_columns__}
    updated["updated_at"] = datetime.utcnow()  # as upsert_many: one moment for the whole statement
    statement = insert.on_conflict_do_update(index_elements=[key.key for key in keys], set_=updated)
    if db.bind.dialect.name == "postgresql":  # multi-row statements, as the original's (insertmanyvalues)
        statement = statement.returning(model.id)
    await db.execute(statement, rows)
    return []


def _install_settings_adapters() -> int:
    """Same validation as the original properties, with the adapter built once per process and the parsed
    settings kept on the object while its settings stay equal to those they were parsed from."""
    Question.parsed_settings = property(_parsed(TypeAdapter(QuestionSettings)))
    MetadataProperty.parsed_settings = property(_parsed(TypeAdapter(MetadataPropertySettings)))
    return 2


_PARSED_KEY = "_assay_parsed_settings"


def _parsed(adapter: TypeAdapter) -> Callable[[Any], Any]:
    def parsed_settings(self: Any) -> Any:
        settings = self.settings
        held = self.__dict__.get(_PARSED_KEY)
        if held is not None and held[0] == settings:
            return held[1]
        parsed = adapter.validate_python(settings)
        self.__dict__[_PARSED_KEY] = (copy.deepcopy(settings), parsed)
        return parsed

    return parsed_settings


# -- 5. new records inserted with one Core statement ---------------------------------------------------------


class _NewRecord:
    """What the rest of a bulk reads of a record inserted with Core: its suggestions, vectors and the search
    engine's hook need the id and the dataset; nothing loads it as an ORM object."""

    __slots__ = ("id", "external_id", "dataset", "dataset_id", "fields", "metadata_")

    def __init__(self, dataset: Any, external_id: str | None, fields: dict, metadata: dict | None) -> None:
        self.id = uuid4()  # the id column's own default
        self.dataset, self.dataset_id = dataset, dataset.id
        self.external_id, self.fields, self.metadata_ = external_id, fields, metadata


class _ValidatedFields:
    """The record the validators read (only its `fields`), not attached to the dataset."""

    __slots__ = ("fields",)

    def __init__(self, fields: Any) -> None:
        self.fields = fields


async def _validate_new(item: Any, dataset: Any) -> None:
    """`RecordCreateValidator.validate`, step by step, with a record that does not join `dataset.records`."""
    record = _ValidatedFields(item.fields)
    RecordCreateValidator._validate_fields(item.fields, dataset)
    RecordCreateValidator._validate_metadata(item.metadata, dataset)
    RecordCreateValidator._validate_suggestions(item.suggestions, dataset, record=record)
    RecordCreateValidator._validate_vectors(item.vectors, dataset)
    await RecordCreateValidator._validate_responses(item.responses, dataset, record=record)


async def _inserts_apply(db: AsyncSession, items: list) -> bool:
    """Whether this bulk may insert its new records with Core (see 5. above)."""
    if not _NO_ANSWER.get() or any(item.responses for item in items):
        return False
    return not any([await subscribed(db, event) for event in (RecordEvent.created, RecordEvent.updated)])


def _install_record_inserts() -> int:
    original = UpsertRecordsBulk.upsert_records_bulk

    async def upsert_records_bulk(
        self: UpsertRecordsBulk, dataset: Any, bulk_upsert: Any, raise_on_error: bool = True
    ) -> Any:
        if self._db.bind.dialect.name == "postgresql":  # see 6. above; until the bulk's commit
            await self._db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        if not await _inserts_apply(self._db, bulk_upsert.items):
            return await original(self, dataset, bulk_upsert, raise_on_error)
        return await _upsert_inserting(self, dataset, bulk_upsert, raise_on_error)

    upsert_records_bulk.__wrapped__ = original
    UpsertRecordsBulk.upsert_records_bulk = upsert_records_bulk
    return 1


async def _upsert_inserting(
    bulk: UpsertRecordsBulk, dataset: Any, bulk_upsert: Any, raise_on_error: bool
) -> Any:
    """`UpsertRecordsBulk.upsert_records_bulk` with the new records inserted by one Core statement."""
    db: AsyncSession = bulk._db
    found_records = await bulk._fetch_existing_dataset_records(dataset, bulk_upsert.items)
    kept, items, found, new = [], [], [], []
    for idx, record_upsert in enumerate(bulk_upsert.items):
        record = found_records.get(record_upsert.id) or found_records.get(record_upsert.external_id)
        try:
            if record is None:
                await _validate_new(record_upsert, dataset)
            else:
                await RecordUpsertValidator.validate(record_upsert, dataset, record)
        except Exception as ex:
            if raise_on_error:
                raise UnprocessableEntityError(f"Record at position {idx} is not valid because {ex}") from ex
            continue  # as the original: skip the invalid record
        if record is None:
            record = _NewRecord(dataset, record_upsert.external_id, jsonable_encoder(record_upsert.fields),
                                record_upsert.metadata)
            new.append(record)
        else:
            if record_upsert.is_set("metadata"):
                record.metadata_ = record_upsert.metadata
            if record_upsert.is_set("fields"):
                record.fields = jsonable_encoder(record_upsert.fields)
            if db.is_modified(record):
                record.updated_at = datetime.utcnow()
            found.append(record)
        kept.append(record)
        items.append(record_upsert)

    if found:
        db.add_all(found)
        await db.flush(found)
    if new:
        await _insert_records(db, new)
    await bulk._upsert_records_relationships(kept, items)
    if found:  # a new record without responses stays pending (see 5. above)
        await distribution.unsafe_update_records_status(db, found)
    await db.commit()

    await bulk._search_engine.index_records(dataset, kept)
    # No record event is sent (_inserts_apply found no webhook listening to them), and no item is answered.
    updated = [record.id for record in found_records.values()]
    return RecordsBulkWithUpdatedItemIds(items=[], updated_item_ids=updated)


async def _insert_records(db: AsyncSession, new: list[_NewRecord]) -> None:
    """One INSERT of the rows; `status`, `inserted_at` and `updated_at` come from the columns' defaults."""
    table = Record.__table__
    rows = [
        {"id": r.id, "fields": r.fields, "metadata": r.metadata_, "external_id": r.external_id,
         "dataset_id": r.dataset_id}
        for r in new
    ]
    statement = insert(table)
    if db.bind.dialect.name == "postgresql":  # sent as multi-row INSERTs (SQLAlchemy's insertmanyvalues)
        statement = statement.returning(table.c.id)
    await db.execute(statement, rows)


def _install_event_wrappers() -> int:
    """Swap the event helpers everywhere argilla_server imported them.

    Call after `import argilla_server` (which imports the whole app), so every importer is in sys.modules.
    """
    replacements: dict[int, Any] = {}
    for module, notify_name, build_name in (
        (records, "notify_record_event", "build_record_event"),
        (responses, "notify_response_event", "build_response_event"),
        (datasets, "notify_dataset_event", "build_dataset_event"),
    ):
        for name, wrap in ((notify_name, _notify_wrapper), (build_name, _build_wrapper)):
            original = getattr(module, name)
            if getattr(original, "__wrapped__", None) is None:
                replacements[id(original)] = wrap(original)
    patched = 0
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("argilla_server") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if id(value) in replacements:
                setattr(module, attr, replacements[id(value)])
                patched += 1
    return patched
