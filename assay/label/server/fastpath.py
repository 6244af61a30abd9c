"""Speed-ups for argilla-server 2.8 that change no stored data; together they more than double push speed.

1. Skip building webhook event payloads while no enabled webhook subscribes to the event.

argilla-server 2.8 builds a full event payload (a dataset query with five eager loads plus a pydantic dump)
for every record, response and dataset change, and only then asks whether any webhook is enabled. With no
webhook configured that is about 60 % of a bulk record upload. These wrappers ask first. The answer is read
from the database at call time and cached only for the current database session (one request or job), so a
webhook added later is served from the next request on.

2. Reuse one pydantic TypeAdapter for question and metadata-property settings. ``parsed_settings`` built a
new adapter (a full schema build, ~4 ms) on every access, several times per record during validation.

3. Upsert a bulk's suggestions and vectors with one compiled statement run for every row (executemany).
``upsert_many`` built one INSERT ... VALUES with a row per suggestion, compiled anew for every request
(each has another number of rows), and loaded the inserted rows back as ORM objects that nothing reads
(the bulk loads the records' suggestions and vectors again before answering): ~14 % of the server's time
in a push. The SQL is the same upsert (ON CONFLICT of the same columns updates the same ones and
``updated_at``), ids and timestamps come from the same column defaults. The original still runs when the
session already holds suggestions or vectors of these records, which a statement without RETURNING would
leave stale.

4. Answer a bulk upsert with an empty item list when the client asks for it (header ``X-Assay-Bulk-Answer:
none``: assay's push reads nothing from the answer). The bulk then skips loading every record's responses,
suggestions and vectors back and serialising them (~25 % of the server's time in a push). What is stored
is the same; the preload still runs when a webhook listens to record events (their payloads read it), and
every other client gets the full answer.

Runs inside the argilla-server virtual environment (loaded by ``launcher.py``); imports only argilla_server
and sqlalchemy.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from argilla_server.api.schemas.v1.questions import QuestionSettings
from argilla_server.bulk import records_bulk
from argilla_server.bulk.records_bulk import CreateRecordsBulk
from argilla_server.models import MetadataProperty, Question, Suggestion, Vector, Webhook
from argilla_server.models.metadata_properties import MetadataPropertySettings
from argilla_server.models.mixins import _INSERT_FUNC
from argilla_server.webhooks.v1 import datasets, records, responses
from argilla_server.webhooks.v1.enums import RecordEvent
from pydantic import TypeAdapter
from sqlalchemy import select
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


def install(parts: str = "all") -> int:
    """Install the speed-ups (`all`, or just `webhooks`, `settings`, `bulk` or `answer`, for measuring);
    returns names patched."""
    patched = 0
    if parts in ("all", "settings"):
        patched += _install_settings_adapters()
    if parts in ("all", "webhooks"):
        patched += _install_event_wrappers()
    if parts in ("all", "bulk"):
        patched += _install_bulk_upserts()
    if parts in ("all", "answer"):
        patched += _install_bulk_answer()
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
    await db.execute(statement, rows)
    return []


def _install_settings_adapters() -> int:
    """Same validation as the original properties, with the adapter built once per process."""
    question_settings = TypeAdapter(QuestionSettings)
    metadata_settings = TypeAdapter(MetadataPropertySettings)
    Question.parsed_settings = property(lambda self: question_settings.validate_python(self.settings))
    MetadataProperty.parsed_settings = property(lambda self: metadata_settings.validate_python(self.settings))
    return 2


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
