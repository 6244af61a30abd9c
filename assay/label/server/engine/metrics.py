"""Progress counts and metadata metrics (the UI's progress bar and filter widgets), grouped in SQL."""

from __future__ import annotations

from typing import Any

from argilla_server.enums import MetadataPropertyType
from argilla_server.models import Dataset, MetadataProperty, Record, Response, User
from argilla_server.search_engine.base import (
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataMetrics,
    TermsMetrics,
)
from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from . import metaindex
from .jsonsql import Elements, JsonSql

MAX_TERMS = 2**14  # the Elasticsearch engine caps term buckets at this size too


async def dataset_progress(db: AsyncSession, dataset: Dataset) -> dict:
    """{total, pending, completed} from the records' status."""
    rows = await db.execute(
        select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
    )
    counts = {_enum_text(status): count for status, count in rows}
    return {"total": sum(counts.values()), **counts}


async def user_progress(db: AsyncSession, dataset: Dataset, user: User) -> dict:
    """The user's responses in this dataset, counted by status, with their total."""
    rows = await db.execute(
        select(Response.status, func.count())
        .join(Record, Record.id == Response.record_id)
        .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
        .group_by(Response.status)
    )
    counts = {_enum_text(status): count for status, count in rows}
    return {"total": sum(counts.values()), **counts}


async def metadata_metrics(db: AsyncSession, metadata_property: MetadataProperty) -> MetadataMetrics:
    """Term counts (most frequent first) for a terms property; min and max for a number property."""
    json = JsonSql.of(db)
    if json.postgresql:  # the metadata index (metaindex.py)
        numeric = metadata_property.type != MetadataPropertyType.terms
        source, number, body = metaindex.element_rows(
            metadata_property.dataset_id, metadata_property.name, numeric=numeric
        )
        elements, base = Elements(source, body, number), select().select_from(source)
    else:
        elements = json.elements(Record.metadata_, (metadata_property.name,))
        base = select().select_from(Record).join(elements.source, true())
        base = base.where(Record.dataset_id == metadata_property.dataset_id)
    if metadata_property.type == MetadataPropertyType.terms:
        return await _terms_metrics(db, base, elements)
    row = (await db.execute(base.add_columns(func.min(elements.number), func.max(elements.number)))).one()
    if metadata_property.type == MetadataPropertyType.integer:
        return IntegerMetadataMetrics(min=_maybe_int(row[0]), max=_maybe_int(row[1]))
    return FloatMetadataMetrics(min=row[0], max=row[1])


async def _terms_metrics(db: AsyncSession, base: Any, elements: Elements) -> TermsMetrics:
    count = func.count().label("n")
    stmt = base.add_columns(elements.text, count).where(elements.text.is_not(None))
    stmt = stmt.group_by(elements.text).order_by(count.desc(), elements.text.asc()).limit(MAX_TERMS)
    values = [TermsMetrics.TermCount(term=term, count=n) for term, n in await db.execute(stmt)]
    return TermsMetrics(total=sum(v.count for v in values), values=values)


def _enum_text(value: Any) -> str:
    return getattr(value, "value", value)


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)
