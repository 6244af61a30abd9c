"""assay's search engine for argilla-server: every answer comes from Argilla's own database tables.

argilla-server 2.8 needs Elasticsearch or OpenSearch for searching, filtering, sorting, progress, metadata
metrics and vector similarity. Neither can be installed here, so this package registers a third engine
(``ARGILLA_SEARCH_ENGINE=assaydb``) that answers the same questions with SQL over the records, responses,
suggestions, vectors and metadata the server already stores. The web server and the rq worker therefore
always agree, and Argilla's index and update hooks are no-ops: the only derived data, the full-text index
and a few extra indexes (``indexes.py``), is maintained by the database itself (triggers on ``records``).

It runs inside the argilla-server virtual environment, where assay itself is not installed: ``launcher.py``
imports this folder by path as the private package ``assay_argilla_engine`` before the app starts, so its
modules import one another relatively. They may import only argilla_server (and what it brings:
sqlalchemy), numpy and the standard library. Semantics follow ``argilla_server/search_engine/commons.py``
(the Elasticsearch query building); the measured details are in shared/ARGILLA.md. It works on SQLite and
PostgreSQL: the few JSON operations that differ live in ``jsonsql.py``.

    jsonsql.py     JSON access per SQL dialect          values.py      parsing filter values and bounds
    schema.py      the dataset's names, resolved once   filters.py     filter scopes to SQL conditions
    sorting.py     sort keys to ORDER BY                text.py        parsing text queries
    search.py      record search pages                  vectors.py     the decoded-vector cache, scores
    similarity.py  nearest records by vector            metrics.py     progress and metadata metrics
    indexes.py     extra indexes, text index, triggers  fulltext.py    text queries through that index
    metaindex.py   the metadata values' index           snapshots.py   decoded vectors saved to disk
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import SimilarityOrder
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Record,
    Response,
    Suggestion,
    User,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    Filter,
    MetadataMetrics,
    Order,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    TextQuery,
)
from sqlalchemy import literal, select
from sqlalchemy import text as sql  # (the package has a submodule named text)
from sqlalchemy.ext.asyncio import AsyncSession

from .indexes import ensure as ensure_prepared
from .indexes import refresh_statistics
from .metrics import dataset_progress, metadata_metrics, user_progress
from .schema import DatasetQuery
from .search import search_records
from .similarity import forget_vectors, query_vector, record_vector, similar_records, warm

ENGINE_NAME = "assaydb"
ENGINE_VERSION = "1"


@SearchEngine.register(engine_name=ENGINE_NAME)
class AssayDbSearchEngine(SearchEngine):
    """Answers argilla-server's search-engine calls from its own database; holds no state between calls."""

    @classmethod
    async def new_instance(cls) -> AssayDbSearchEngine:
        return cls()

    async def close(self) -> None:
        return None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session of our own, so callers' transactions are never touched.

        The first session of a process also makes sure the engine's indexes and triggers exist. On
        PostgreSQL every statement is planned for its values: asyncpg prepares the engine's statements
        once and reuses them, and after five runs PostgreSQL may switch to a generic plan that ignores the
        values (a metadata filter passing 90 % of the records, guessed at 50 rows, became a 90k-row
        nested loop: 500 ms instead of 75).
        """
        async with AsyncSessionLocal() as db:
            await ensure_prepared(db)
            if db.bind.dialect.name == "postgresql":
                await db.execute(sql("SET LOCAL plan_cache_mode = force_custom_plan"))
            yield db

    async def ping(self) -> bool:
        async with self._session() as db:
            return (await db.execute(select(literal(1)))).scalar() == 1

    async def info(self) -> dict:
        async with self._session() as db:
            database = "postgresql" if db.bind.dialect.name == "postgresql" else "sqlite"
        return {"engine": ENGINE_NAME, "version": ENGINE_VERSION, "database": database}

    # Index maintenance: the database already holds everything, so these have nothing to do.
    async def create_index(self, dataset: Dataset) -> None:
        return None

    async def delete_index(self, dataset: Dataset) -> None:
        """Only the similarity cache's saved blocks of the dataset (files of our own) go with it."""
        forget_vectors(dataset.id)

    async def configure_metadata_property(
        self, dataset: Dataset, metadata_property: MetadataProperty
    ) -> None:
        return None

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        return None

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        """Nothing to index (triggers keep the text index); planner statistics may need a refresh."""
        async with self._session() as db:
            await refresh_statistics(db)

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        return None

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        return None

    async def update_record_response(self, response: Response) -> None:
        return None

    async def delete_record_response(self, response: Response) -> None:
        return None

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        return None

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        return None

    # Progress and metrics.
    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with self._session() as db:
            return await dataset_progress(db, dataset)

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with self._session() as db:
            return await user_progress(db, dataset, user)

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        async with self._session() as db:
            return await metadata_metrics(db, metadata_property)

    # Search.
    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> SearchResponses:
        """Filter, count and page in SQL; text through the database's text index; per-user order on /me."""
        async with self._session() as db:
            q = await DatasetQuery.load(db, dataset.id)
            return await search_records(
                db, q, query, filter, sort, offset=offset, limit=limit, user_id=user_id
            )

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        """The k nearest records by cosine score among those the filter and text query allow."""
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        async with self._session() as db:
            q = await DatasetQuery.load(db, dataset.id)
            stored = None if value else await record_vector(db, record, vector_settings)
            vector = query_vector(value, stored, order)
            best = await similar_records(
                db, q, vector_settings, vector, record=record, query=query, filter=filter, k=max_results
            )
        if threshold is not None:
            best = [(record_id, score) for record_id, score in best if score >= threshold]
        items = [SearchResponseItem(record_id=record_id, score=score) for record_id, score in best]
        return SearchResponses(items=items, total=len(items))


async def warm_vector_cache() -> tuple[int, int]:
    """Fill the similarity cache at server start (``similarity.warm``); returns (blocks, vectors)."""
    async with AsyncSessionLocal() as db:
        await ensure_prepared(db)
        return await warm(db)
