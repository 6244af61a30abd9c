"""The engine's own schema beside Argilla's tables: extra indexes and a full-text index kept in step by triggers.

Argilla's migrations create only the indexes its Elasticsearch-backed queries need; this engine answers
every query in SQL, so it adds (idempotently, ``CREATE INDEX IF NOT EXISTS``) the ones its plans use:
``records(dataset_id, status, id)`` covers the pending queue, its count and the progress counts;
``records(dataset_id, inserted_at, id)`` the default insertion order; ``vectors(vector_settings_id,
record_id, updated_at)`` the similarity cache's fingerprint and listing without reading the vectors' JSON.
``responses(record_id, user_id)`` is already Argilla's unique constraint.

Text search uses the database's own index instead of Python loops over records. Side table
``assay_text_rows`` holds, per record, one row per searchable field (scope ``f<field id>``) and one row of all
of them together (scope ``d<dataset id>``, fields separated by a token no query contains, so a phrase never
spans two fields). Searchable means what Elasticsearch indexes: every text leaf of a field, only the
message contents of a chat field, never an image field. Triggers on Argilla's ``records`` (insert, update
of ``fields``, delete; cascaded deletes included) keep the rows in step, so the web server, the rq worker
and any other writer are covered without hooks in Python.

- SQLite: an FTS5 index (``assay_text``, tokenizer unicode61 without diacritic folding and with ``_`` as a
  word character: the same words as the engine's ``\\w+`` tokens) over ``assay_text_rows`` as external
  content; the scope is an indexed column too, so a query names its scope inside MATCH (and a purely negated
  query still has a positive term to start from).
- PostgreSQL: a ``tsvector`` column ('simple' configuration, ASCII punctuation turned into spaces first, so
  "3.5" or "a-b" give the same words as ``\\w+``, and "_" spelled as letters so "fox_trot" stays one word)
  with a GIN index, filled by plpgsql trigger functions.

``prepare`` creates everything once per database (and rebuilds it when ``SCHEMA_VERSION`` changes),
backfilling the rows of records that existed before the triggers, in the same transaction as the triggers'
creation so no record can slip between the two. The launcher calls it before the server starts; the engine
calls it again, once per process, before its first query (a cheap check when already done).
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SCHEMA_VERSION = "1"
FIELD_BREAK = "assayfieldbreak"  # separates fields in a record's all-fields text; no query holds it
_ADVISORY_KEY = 710_442_963  # PostgreSQL advisory lock serialising engines preparing the same database

_BTREE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_assay_records_dataset_status_id ON records (dataset_id, status, id)",
    "CREATE INDEX IF NOT EXISTS ix_assay_records_dataset_inserted ON records (dataset_id, inserted_at, id)",
    "CREATE INDEX IF NOT EXISTS ix_assay_vectors_settings_record_updated "
    "ON vectors (vector_settings_id, record_id, updated_at)",
)

# Tables whose planner statistics decide the engine's plans (PostgreSQL).
_ANALYZED = ("records", "responses", "suggestions", "vectors", "assay_text_rows")
_ANALYZE_EVERY_S = 30.0  # at most one statistics check per process in this time

_prepared: set[str] = set()
_lock = asyncio.Lock()
_last_check = 0.0


async def ensure(db: AsyncSession) -> None:
    """`prepare` once per process and database; later calls cost nothing."""
    key = str(db.bind.url)
    if key in _prepared:
        return
    async with _lock:
        if key not in _prepared:
            await prepare(db)
            _prepared.add(key)


async def prepare(db: AsyncSession) -> None:
    """Create (or rebuild, on a new SCHEMA_VERSION) the indexes, side table and triggers; commit."""
    postgresql = db.bind.dialect.name == "postgresql"
    await db.execute(
        text("CREATE TABLE IF NOT EXISTS assay_engine_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    )
    await db.commit()
    if postgresql:
        await db.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})"))
    else:  # take SQLite's write lock first: a read-then-write transaction could deadlock with another process
        await db.execute(text("INSERT OR REPLACE INTO assay_engine_meta (key, value) VALUES ('lock', '')"))
    for statement in _BTREE_INDEXES:
        await db.execute(text(statement))
    current = await db.execute(text("SELECT value FROM assay_engine_meta WHERE key = 'text_schema'"))
    if current.scalar() != SCHEMA_VERSION:
        await _rebuild_text(db, postgresql)
    await db.commit()
    if postgresql:
        await db.execute(text("ANALYZE " + ", ".join(_ANALYZED)))
        await db.commit()


async def refresh_statistics(db: AsyncSession) -> None:
    """PostgreSQL with autovacuum off: ANALYZE the engine's tables once a tenth of their rows changed.

    Why: without statistics the planner guesses a few rows for "records of this dataset with this status"
    and picks a nested-loop anti join for the pending queue: 14 s instead of 50 ms on 100k records. With
    autovacuum on (PostgreSQL's default) the server keeps statistics itself and this does nothing. Called
    after record writes, at most every 30 s per process; ANALYZE blocks neither reads nor writes.
    """
    global _last_check
    if db.bind.dialect.name != "postgresql" or time.monotonic() - _last_check < _ANALYZE_EVERY_S:
        return
    _last_check = time.monotonic()
    if (await db.execute(text("SELECT current_setting('autovacuum')"))).scalar() == "on":
        return
    stale = await db.execute(
        text(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) "
            "AND n_mod_since_analyze > 1000 + n_live_tup / 10"
        ),
        {"names": list(_ANALYZED)},
    )
    names = [name for name in stale.scalars() if name in _ANALYZED]
    if names:
        await db.execute(text("ANALYZE " + ", ".join(names)))
        await db.commit()


async def _rebuild_text(db: AsyncSession, postgresql: bool) -> None:
    for statement in _PG_DROP if postgresql else _SQLITE_DROP:
        await db.execute(text(statement))
    for statement in _pg_create() if postgresql else _sqlite_create():
        await db.execute(text(statement))
    backfill = _PG_BACKFILL if postgresql else _sqlite_backfill()
    await db.execute(text(backfill))
    await db.execute(text("DELETE FROM assay_engine_meta WHERE key = 'text_schema'"))
    await db.execute(
        text("INSERT INTO assay_engine_meta (key, value) VALUES ('text_schema', :v)"), {"v": SCHEMA_VERSION}
    )


# SQLite ------------------------------------------------------------------------------------------------

_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS assay_records_text_ai",
    "DROP TRIGGER IF EXISTS assay_records_text_au",
    "DROP TRIGGER IF EXISTS assay_records_text_ad",
    "DROP TRIGGER IF EXISTS assay_text_rows_ai",
    "DROP TRIGGER IF EXISTS assay_text_rows_ad",
    "DROP TABLE IF EXISTS assay_text",
    "DROP TABLE IF EXISTS assay_text_rows",
)

SQLITE_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"


def _sqlite_field_text(record: str) -> str:
    """The searchable text of field `f` of `record` (a correlated scalar subquery; f is a `fields` row)."""
    return (
        "(SELECT group_concat(t.value, ' ') FROM json_tree("
        f"{record}.fields, '$.\"' || replace(f.name, '\"', '\\\"') || '\"') AS t "
        "WHERE t.type IN ('text', 'integer', 'real') "
        "AND (json_extract(f.settings, '$.type') IS NOT 'chat' OR t.key = 'content'))"
    )


def _sqlite_rows(record: str, source: str = "") -> str:
    """SELECT (record_id, scope, body) rows: one per searchable field, one for all of them.

    `record` names the records row (NEW in a trigger); `source` is "" in a trigger, else the FROM item that
    binds it (SQLite has no LATERAL, so the backfill joins records to fields directly).
    """
    searchable = f"f.dataset_id = {record}.dataset_id AND json_extract(f.settings, '$.type') IS NOT 'image'"
    body = _sqlite_field_text(record)
    per_field = (
        f"SELECT {record}.id, 'f' || f.id, coalesce({body}, '') FROM {source + ', ' if source else ''}"
    )
    all_fields = f"(SELECT group_concat({body}, ' {FIELD_BREAK} ') FROM fields AS f WHERE {searchable})"
    return (
        f"{per_field}fields AS f WHERE {searchable} "
        f"UNION ALL SELECT {record}.id, 'd' || {record}.dataset_id, coalesce({all_fields}, '')"
        f"{' FROM ' + source if source else ''}"
    )


def _sqlite_create() -> list[str]:
    insert = f"INSERT INTO assay_text_rows (record_id, scope, body) {_sqlite_rows('NEW')};"
    return [
        "CREATE TABLE assay_text_rows (id INTEGER PRIMARY KEY, record_id CHAR(32) NOT NULL, "
        "scope VARCHAR NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX ix_assay_text_rows_record ON assay_text_rows (record_id)",
        "CREATE VIRTUAL TABLE assay_text USING fts5(scope, body, content='assay_text_rows', "
        f"content_rowid='id', tokenize=\"{SQLITE_TOKENIZER}\")",
        # External content: the FTS index follows assay_text_rows through these two triggers.
        "CREATE TRIGGER assay_text_rows_ai AFTER INSERT ON assay_text_rows BEGIN "
        "INSERT INTO assay_text (rowid, scope, body) VALUES (NEW.id, NEW.scope, NEW.body); END",
        "CREATE TRIGGER assay_text_rows_ad AFTER DELETE ON assay_text_rows BEGIN "
        "INSERT INTO assay_text (assay_text, rowid, scope, body) "
        "VALUES ('delete', OLD.id, OLD.scope, OLD.body); END",
        f"CREATE TRIGGER assay_records_text_ai AFTER INSERT ON records BEGIN {insert} END",
        "CREATE TRIGGER assay_records_text_au AFTER UPDATE OF fields, dataset_id ON records BEGIN "
        f"DELETE FROM assay_text_rows WHERE record_id = OLD.id; {insert} END",
        "CREATE TRIGGER assay_records_text_ad AFTER DELETE ON records BEGIN "
        "DELETE FROM assay_text_rows WHERE record_id = OLD.id; END",
    ]


def _sqlite_backfill() -> str:
    return f"INSERT INTO assay_text_rows (record_id, scope, body) {_sqlite_rows('r', 'records AS r')}"


# PostgreSQL --------------------------------------------------------------------------------------------

_PG_DROP = (
    "DROP TRIGGER IF EXISTS assay_records_text ON records",
    "DROP TABLE IF EXISTS assay_text_rows",
    "DROP FUNCTION IF EXISTS assay_records_text()",
    "DROP FUNCTION IF EXISTS assay_record_text(uuid, json)",
    "DROP FUNCTION IF EXISTS assay_field_text(json, boolean)",
    "DROP FUNCTION IF EXISTS assay_tsvector(text)",
)

# ASCII punctuation but "_" (the ranges !-/ :-@ [-^ ` {-~) becomes spaces: the parser then sees plain words.
PG_PUNCTUATION = "[!-/:-@\\[-^`{-~]+"
# The parser splits words at "_", which \w+ keeps inside a word: it becomes these letters first, so
# "fox_trot" stays one word (and a query for it is spelled the same way, in fulltext.py).
PG_UNDERSCORE = "zqjxu"


def _pg_create() -> list[str]:
    return [
        "CREATE TABLE assay_text_rows (record_id uuid NOT NULL, scope varchar NOT NULL, tsv tsvector NOT NULL)",
        "CREATE INDEX ix_assay_text_rows_record ON assay_text_rows (record_id)",
        "CREATE INDEX ix_assay_text_rows_tsv ON assay_text_rows USING GIN (tsv)",
        "CREATE FUNCTION assay_tsvector(body text) RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$ "
        "SELECT to_tsvector('simple', regexp_replace("
        f"replace(body, '_', '{PG_UNDERSCORE}'), '{PG_PUNCTUATION}', ' ', 'g')) $$",
        # Text leaves of a JSON value, walked recursively; for chat fields only those under a "content" key.
        "CREATE FUNCTION assay_field_text(value json, chat boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
        "WITH RECURSIVE walk(v, k) AS (SELECT value, NULL::text UNION ALL "
        "SELECT c.v, c.k FROM walk AS w CROSS JOIN LATERAL ("
        "SELECT e.value AS v, e.key AS k FROM json_each(CASE WHEN json_typeof(w.v) = 'object' THEN w.v END) AS e "
        "UNION ALL SELECT a.value, w.k FROM json_array_elements("
        "CASE WHEN json_typeof(w.v) = 'array' THEN w.v END) AS a) AS c) "
        "SELECT string_agg(v #>> '{}', ' ') FROM walk "
        "WHERE json_typeof(v) IN ('string', 'number') AND (NOT chat OR k = 'content') $$",
        "CREATE FUNCTION assay_record_text(dataset uuid, doc json) RETURNS TABLE (scope varchar, body text) "
        "LANGUAGE sql STABLE AS $$ "
        "WITH parts AS (SELECT f.id, assay_field_text(doc -> f.name, f.settings ->> 'type' = 'chat') AS body "
        "FROM fields AS f WHERE f.dataset_id = dataset AND f.settings ->> 'type' IS DISTINCT FROM 'image') "
        "SELECT 'f' || id::text, coalesce(body, '') FROM parts UNION ALL "
        f"SELECT 'd' || dataset::text, coalesce(string_agg(body, ' {FIELD_BREAK} '), '') FROM parts $$",
        "CREATE FUNCTION assay_records_text() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP <> 'INSERT' THEN DELETE FROM assay_text_rows WHERE record_id = OLD.id; END IF; "
        "IF TG_OP <> 'DELETE' THEN INSERT INTO assay_text_rows (record_id, scope, tsv) "
        "SELECT NEW.id, t.scope, assay_tsvector(t.body) FROM assay_record_text(NEW.dataset_id, NEW.fields) AS t; "
        "END IF; RETURN NULL; END $$",
        "CREATE TRIGGER assay_records_text AFTER INSERT OR DELETE OR UPDATE OF fields, dataset_id ON records "
        "FOR EACH ROW EXECUTE FUNCTION assay_records_text()",
    ]


_PG_BACKFILL = (
    "INSERT INTO assay_text_rows (record_id, scope, tsv) SELECT r.id, t.scope, assay_tsvector(t.body) "
    "FROM records AS r CROSS JOIN LATERAL assay_record_text(r.dataset_id, r.fields) AS t"
)
