"""What a filter or sort names, resolved once per call: the dataset's questions, metadata properties, fields."""

from __future__ import annotations

import dataclasses
from uuid import UUID

from argilla_server.models import Field, MetadataProperty, Question, Record
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .jsonsql import JsonSql

# The record properties a record scope may name (the SDK's "id" is external_id).
RECORD_COLUMNS = {
    "id": Record.id,
    "external_id": Record.external_id,
    "inserted_at": Record.inserted_at,
    "updated_at": Record.updated_at,
    "status": Record.status,
}


@dataclasses.dataclass
class Schema:
    """Questions (name -> id and type), metadata properties and fields (name -> type) of one dataset."""

    questions: dict[str, tuple[UUID, str]]
    metadata: dict[str, str]
    fields: dict[str, str]
    field_ids: dict[str, UUID] = dataclasses.field(default_factory=dict)

    @classmethod
    async def load(cls, db: AsyncSession, dataset_id: UUID) -> Schema:
        questions = await db.execute(
            select(Question.name, Question.id, Question.settings).where(Question.dataset_id == dataset_id)
        )
        metadata = await db.execute(
            select(MetadataProperty.name, MetadataProperty.settings).where(
                MetadataProperty.dataset_id == dataset_id
            )
        )
        fields = (
            await db.execute(
                select(Field.name, Field.settings, Field.id).where(Field.dataset_id == dataset_id)
            )
        ).all()
        return cls(
            questions={name: (qid, (settings or {}).get("type", "")) for name, qid, settings in questions},
            metadata={name: (settings or {}).get("type", "") for name, settings in metadata},
            fields={name: (settings or {}).get("type", "") for name, settings, _ in fields},
            field_ids={name: field_id for name, _, field_id in fields},
        )


@dataclasses.dataclass(frozen=True)
class DatasetQuery:
    """What filters and sorts of one call are translated against: the dataset, its schema, the SQL dialect."""

    dataset_id: UUID
    schema: Schema
    json: JsonSql

    @classmethod
    async def load(cls, db: AsyncSession, dataset_id: UUID) -> DatasetQuery:
        return cls(dataset_id, await Schema.load(db, dataset_id), JsonSql.of(db))

    def question(self, name: str | None) -> tuple[UUID, str] | None:
        """(id, type) of the named question; None when no name is given or the dataset has no such question."""
        return self.schema.questions.get(name) if name else None
