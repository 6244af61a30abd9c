"""Two speed-ups for argilla-server 2.8 that change no behaviour; together they about double push speed.

1. Skip building webhook event payloads while no enabled webhook subscribes to the event.

argilla-server 2.8 builds a full event payload (a dataset query with five eager loads plus a pydantic dump)
for every record, response and dataset change, and only then asks whether any webhook is enabled. With no
webhook configured that is about 60 % of a bulk record upload. These wrappers ask first. The answer is read
from the database at call time and cached only for the current database session (one request or job), so a
webhook added later is served from the next request on.

2. Reuse one pydantic TypeAdapter for question and metadata-property settings. ``parsed_settings`` built a
new adapter (a full schema build, ~4 ms) on every access, several times per record during validation.

Runs inside the argilla-server virtual environment (loaded by ``launcher.py``); imports only argilla_server
and sqlalchemy.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from argilla_server.api.schemas.v1.questions import QuestionSettings
from argilla_server.models import MetadataProperty, Question, Webhook
from argilla_server.models.metadata_properties import MetadataPropertySettings
from argilla_server.webhooks.v1 import datasets, records, responses
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
    """Install the speed-ups (`all`, or just `webhooks` or `settings`, for measuring); returns names patched."""
    patched = 0
    if parts in ("all", "settings"):
        patched += _install_settings_adapters()
    if parts in ("all", "webhooks"):
        patched += _install_event_wrappers()
    return patched


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
