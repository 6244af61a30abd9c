"""The engine's own schema beside Argilla's tables: extra indexes and a full-text index kept in step by triggers.

Argilla's migrations create only the indexes its Elasticsearch-backed queries need; this engine answers
every query in SQL, so it adds (idempotently, ``CREATE INDEX IF NOT EXISTS``) the ones its plans use:
``records(dataset_id, status, id)`` covers the pending queue, its count and the progress counts;
``records(dataset_id, inserted_at, id)`` the default insertion order; ``vectors(vector_settings_id,
record_id, updated_at)`` the similarity cache's fingerprint and listing without reading the vectors' JSON.
``responses(record_id, user_id)`` is already Argilla's unique constraint.

Text search uses the database's own index instead of Python loops over records. Searchable means what
Elasticsearch indexes: every text leaf of a field, only the message contents of a chat field, never an
image field. Triggers on Argilla's ``records`` (insert, update of ``fields``, delete; cascaded deletes
included) keep the side table ``assay_text_rows`` in step, so the web server, the rq worker and any other
writer are covered without hooks in Python. Writes pay for it: the layouts below index each field's text
once per write (a first version indexed it twice and halved push throughput).

- SQLite: one row per record in an FTS5 index (``assay_text``, tokenizer unicode61 without diacritic
  folding and with ``_`` as a word character: the same words as the engine's ``\\w+`` tokens) over
  ``assay_text_rows`` as external content. Each searchable field has its own column (``c0``..``c15``,
  assigned in creation order when the field is created: ``assay_text_fields``), so FTS5's own column
  filters answer one-field queries, its AND spans fields while a phrase stays inside one, and a dataset's
  first 16 searchable fields are searchable. The dataset is an indexed ``scope`` token, so a query names
  it inside MATCH (and a purely negated query still has a positive term to start from).
- PostgreSQL: per record one row per searchable field (scope ``f<field id>``) and one of all of them (scope
  ``d<dataset id>``: the fields' vectors joined, each followed by a break token, so a phrase never spans
  two fields), each a ``tsvector`` ('simple' configuration, ASCII punctuation turned into spaces first, so
  "3.5" or "a-b" give the same words as ``\\w+``, and "_" spelled as letters so "fox_trot" stays one word)
  with a GIN index, filled by statement-level plpgsql triggers that run without JIT (see ``metaindex.py``).

``prepare`` creates everything once per database (and rebuilds it when ``SCHEMA_VERSION`` changes),
backfilling the rows of records that existed before the triggers, in the same transaction as the triggers'
creation so no record can slip between the two. The launcher calls it before the server starts; the engine
calls it again, once per process, before its first query (a cheap check when already done).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from . import metaindex

SCHEMA_VERSION = "4"  # 4: all-fields vector by a built-in step, triggers without JIT
FIELD_BREAK = "assayfieldbreak"  # separates fields in a record's all-fields text; no query holds it
_ADVISORY_KEY = 710_442_963  # PostgreSQL advisory lock serialising engines preparing the same database

_BTREE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_assay_records_dataset_status_id ON records (dataset_id, status, id)",
    "CREATE INDEX IF NOT EXISTS ix_assay_records_dataset_inserted ON records (dataset_id, inserted_at, id)",
    "CREATE INDEX IF NOT EXISTS ix_assay_vectors_settings_record_updated "
    "ON vectors (vector_settings_id, record_id, updated_at)",
)

# Tables whose planner statistics decide the engine's plans (PostgreSQL).
_ANALYZED = ("records", "responses", "suggestions", "vectors", "assay_text_rows", "assay_metadata_values")
_ANALYZE_EVERY_S = 30.0  # at most one statistics check per process in this time

_prepared: set[str] = set()
_lock = asyncio.Lock()
_last_check = 0.0
_VACUUMING: set[asyncio.Task] = set()  # background VACUUMs in flight (a reference keeps each alive)


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
    current = (
        await db.execute(text("SELECT value FROM assay_engine_meta WHERE key = 'metadata_schema'"))
    ).scalar()
    if postgresql and current != metaindex.SCHEMA_VERSION:
        await metaindex.rebuild(db)
        await _set_version(db, "metadata_schema", metaindex.SCHEMA_VERSION)
    elif not postgresql and current is not None:
        await metaindex.drop_sqlite(db)
        await db.execute(text("DELETE FROM assay_engine_meta WHERE key = 'metadata_schema'"))
    await db.commit()
    if postgresql and await _autovacuum_off(db):
        await db.commit()
        await vacuum(db.bind, _ANALYZED)
    elif postgresql:
        await db.execute(text("ANALYZE " + ", ".join(_ANALYZED)))
        await db.commit()


async def refresh_statistics(db: AsyncSession) -> None:
    """PostgreSQL with autovacuum off: VACUUM ANALYZE the engine's tables once a tenth of their rows changed.

    Why: without statistics the planner guesses a few rows for "records of this dataset with this status"
    and picks a nested-loop anti join for the pending queue: 14 s instead of 50 ms on 100k records. Without
    VACUUM no page is marked all-visible, so every index-only scan (a metadata filter's count over the
    metadata index) still reads the table: 180 ms instead of 75 ms for 90k of 100k records. With autovacuum
    on (PostgreSQL's default) the server does both itself and this does nothing. Called after record
    writes, at most every 30 s per process; it runs in the background (the write's request does not wait)
    and blocks neither reads nor writes.
    """
    global _last_check
    if db.bind.dialect.name != "postgresql" or time.monotonic() - _last_check < _ANALYZE_EVERY_S:
        return
    _last_check = time.monotonic()
    if not await _autovacuum_off(db):
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
        task = asyncio.get_running_loop().create_task(vacuum(db.bind, names))
        _VACUUMING.add(task)
        task.add_done_callback(_VACUUMING.discard)


async def _autovacuum_off(db: AsyncSession) -> bool:
    return (await db.execute(text("SELECT current_setting('autovacuum')"))).scalar() != "on"


async def vacuum(bind: AsyncEngine, names: Sequence[str]) -> None:
    """VACUUM ANALYZE the tables, on a connection of its own outside any transaction (VACUUM needs that)."""
    async with bind.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE) " + ", ".join(names)))


async def _rebuild_text(db: AsyncSession, postgresql: bool) -> None:
    for statement in _PG_DROP if postgresql else _SQLITE_DROP:
        await db.execute(text(statement))
    for statement in _pg_create() if postgresql else _sqlite_create():
        await db.execute(text(statement))
    for statement in _PG_BACKFILL if postgresql else _sqlite_backfill():
        await db.execute(text(statement))
    await _set_version(db, "text_schema", SCHEMA_VERSION)


async def _set_version(db: AsyncSession, key: str, version: str) -> None:
    await db.execute(text("DELETE FROM assay_engine_meta WHERE key = :k"), {"k": key})
    await db.execute(
        text("INSERT INTO assay_engine_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": version}
    )


# SQLite ------------------------------------------------------------------------------------------------

_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS assay_records_text_ai",
    "DROP TRIGGER IF EXISTS assay_records_text_au",
    "DROP TRIGGER IF EXISTS assay_records_text_ad",
    "DROP TRIGGER IF EXISTS assay_text_rows_ai",
    "DROP TRIGGER IF EXISTS assay_text_rows_ad",
    "DROP TRIGGER IF EXISTS assay_fields_text_ai",
    "DROP TRIGGER IF EXISTS assay_fields_text_ad",
    "DROP TABLE IF EXISTS assay_text",
    "DROP TABLE IF EXISTS assay_text_rows",
    "DROP TABLE IF EXISTS assay_text_fields",
)

SQLITE_TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"
SQLITE_COLUMNS = 16  # text columns of the FTS5 table: a dataset's first 16 searchable fields are indexed
_COLUMNS = [f"c{i}" for i in range(SQLITE_COLUMNS)]


def _sqlite_field_text(record: str) -> str:
    """The searchable text of field `m` (an assay_text_fields row) of `record`.

    A plain string (a text field) is read directly; other values walk the JSON tree for their text leaves,
    only "content" leaves for chat fields.
    """
    path = "'$.\"' || replace(m.name, '\"', '\\\"') || '\"'"
    walk = (
        f"(SELECT group_concat(t.value, ' ') FROM json_tree({record}.fields, {path}) AS t "
        "WHERE t.type IN ('text', 'integer', 'real') AND (NOT m.chat OR t.key = 'content'))"
    )
    return (
        f"CASE WHEN NOT m.chat AND json_type({record}.fields, {path}) = 'text' "
        f"THEN json_extract({record}.fields, {path}) ELSE {walk} END"
    )


def _sqlite_row(record: str) -> str:
    """SELECT the (record_id, scope, c0..c15) row of `record` (NEW in a trigger, r in the backfill)."""
    body = _sqlite_field_text(record)
    columns = ", ".join(f"max(CASE WHEN m.col = {i} THEN {body} END)" for i in range(SQLITE_COLUMNS))
    return (
        f"SELECT {record}.id, 'd' || {record}.dataset_id, {columns} "
        f"FROM assay_text_fields AS m WHERE m.dataset_id = {record}.dataset_id"
    )


def _sqlite_create() -> list[str]:
    names = ", ".join(_COLUMNS)
    insert = f"INSERT INTO assay_text_rows (record_id, scope, {names}) {_sqlite_row('NEW')};"
    new_values = ", ".join(f"NEW.{c}" for c in _COLUMNS)
    old_values = ", ".join(f"OLD.{c}" for c in _COLUMNS)
    return [
        # Which column holds which field: assigned when the field is created (datasets get their fields
        # while still drafts, before any record), in creation order, image fields left out.
        "CREATE TABLE assay_text_fields (field_id CHAR(32) PRIMARY KEY, dataset_id CHAR(32) NOT NULL, "
        "name VARCHAR NOT NULL, chat BOOLEAN NOT NULL, col INTEGER NOT NULL)",
        "CREATE INDEX ix_assay_text_fields_dataset ON assay_text_fields (dataset_id)",
        "CREATE TRIGGER assay_fields_text_ai AFTER INSERT ON fields "
        "WHEN json_extract(NEW.settings, '$.type') IS NOT 'image' BEGIN "
        "INSERT INTO assay_text_fields (field_id, dataset_id, name, chat, col) VALUES (NEW.id, NEW.dataset_id, "
        "NEW.name, json_extract(NEW.settings, '$.type') IS 'chat', "
        "(SELECT coalesce(max(col) + 1, 0) FROM assay_text_fields WHERE dataset_id = NEW.dataset_id)); END",
        "CREATE TRIGGER assay_fields_text_ad AFTER DELETE ON fields BEGIN "
        "DELETE FROM assay_text_fields WHERE field_id = OLD.id; END",
        f"CREATE TABLE assay_text_rows (id INTEGER PRIMARY KEY, record_id CHAR(32) NOT NULL, "
        f"scope VARCHAR NOT NULL, {', '.join(c + ' TEXT' for c in _COLUMNS)})",
        "CREATE INDEX ix_assay_text_rows_record ON assay_text_rows (record_id)",
        f"CREATE VIRTUAL TABLE assay_text USING fts5(scope, {names}, content='assay_text_rows', "
        f"content_rowid='id', tokenize=\"{SQLITE_TOKENIZER}\")",
        # External content: the FTS index follows assay_text_rows through these two triggers.
        "CREATE TRIGGER assay_text_rows_ai AFTER INSERT ON assay_text_rows BEGIN "
        f"INSERT INTO assay_text (rowid, scope, {names}) VALUES (NEW.id, NEW.scope, {new_values}); END",
        "CREATE TRIGGER assay_text_rows_ad AFTER DELETE ON assay_text_rows BEGIN "
        f"INSERT INTO assay_text (assay_text, rowid, scope, {names}) "
        f"VALUES ('delete', OLD.id, OLD.scope, {old_values}); END",
        f"CREATE TRIGGER assay_records_text_ai AFTER INSERT ON records BEGIN {insert} END",
        "CREATE TRIGGER assay_records_text_au AFTER UPDATE OF fields, dataset_id ON records BEGIN "
        f"DELETE FROM assay_text_rows WHERE record_id = OLD.id; {insert} END",
        "CREATE TRIGGER assay_records_text_ad AFTER DELETE ON records BEGIN "
        "DELETE FROM assay_text_rows WHERE record_id = OLD.id; END",
    ]


def _sqlite_backfill() -> list[str]:
    names = ", ".join(_COLUMNS)
    ranked = (
        "SELECT f.id, f.dataset_id, f.name, json_extract(f.settings, '$.type') IS 'chat', "
        "row_number() OVER (PARTITION BY f.dataset_id ORDER BY f.inserted_at, f.id) - 1 "
        "FROM fields AS f WHERE json_extract(f.settings, '$.type') IS NOT 'image'"
    )
    return [
        f"INSERT INTO assay_text_fields (field_id, dataset_id, name, chat, col) {ranked}",
        f"INSERT INTO assay_text_rows (record_id, scope, {names}) {_sqlite_row('r')} GROUP BY r.id".replace(
            "FROM assay_text_fields AS m WHERE m.dataset_id = r.dataset_id",
            "FROM records AS r LEFT JOIN assay_text_fields AS m ON m.dataset_id = r.dataset_id",
        ),
    ]


# PostgreSQL --------------------------------------------------------------------------------------------

_PG_TRIGGERS = ("assay_records_text_ins", "assay_records_text_upd", "assay_records_text_del")
_PG_DROP = (
    "DROP TRIGGER IF EXISTS assay_records_text ON records",
    *(f"DROP TRIGGER IF EXISTS {name} ON records" for name in _PG_TRIGGERS),
    "DROP TABLE IF EXISTS assay_text_rows",
    "DROP FUNCTION IF EXISTS assay_records_text()",
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in _PG_TRIGGERS),
    "DROP FUNCTION IF EXISTS assay_record_text(uuid, json)",
    "DROP AGGREGATE IF EXISTS assay_tsvector_agg(tsvector)",
    "DROP FUNCTION IF EXISTS assay_tsvector_join(tsvector, tsvector)",
    "DROP FUNCTION IF EXISTS assay_field_text(json, boolean)",
    "DROP FUNCTION IF EXISTS assay_tsvector(text)",
)

# ASCII punctuation but "_" (the ranges !-/ :-@ [-^ ` {-~) becomes spaces: the parser then sees plain words.
PG_PUNCTUATION = "[!-/:-@\\[-^`{-~]+"
# The parser splits words at "_", which \\w+ keeps inside a word: it becomes these letters first, so
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
        # Text leaves of a JSON value; a plain string directly, else walked recursively (for chat fields
        # only the leaves under a "content" key).
        "CREATE FUNCTION assay_field_text(value json, chat boolean) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
        "SELECT CASE WHEN NOT chat AND json_typeof(value) = 'string' THEN value #>> '{}' ELSE ("
        "WITH RECURSIVE walk(v, k) AS (SELECT value, NULL::text UNION ALL "
        "SELECT c.v, c.k FROM walk AS w CROSS JOIN LATERAL ("
        "SELECT e.value AS v, e.key AS k FROM json_each(CASE WHEN json_typeof(w.v) = 'object' THEN w.v END) AS e "
        "UNION ALL SELECT a.value, w.k FROM json_array_elements("
        "CASE WHEN json_typeof(w.v) = 'array' THEN w.v END) AS a) AS c) "
        "SELECT string_agg(v #>> '{}', ' ') FROM walk "
        "WHERE json_typeof(v) IN ('string', 'number') AND (NOT chat OR k = 'content')) END $$",
        # The all-fields vector joins the fields' vectors (no second parse), each followed by a break token:
        # concatenation shifts positions, so without it a phrase could span two fields. The aggregate's step
        # is PostgreSQL's own concatenation (a SQL step function ran through the SQL executor per field).
        "CREATE AGGREGATE assay_tsvector_agg(tsvector) (SFUNC = tsvector_concat, STYPE = tsvector)",
        # A plain string (a text field's value) is read in place; only other values call assay_field_text,
        # which the planner cannot inline (one SQL-executor call per field and record: ~20 µs a record).
        "CREATE FUNCTION assay_record_text(dataset uuid, doc json) RETURNS TABLE (scope varchar, tsv tsvector) "
        "LANGUAGE sql STABLE AS $$ "
        "WITH parts AS (SELECT f.id, f.inserted_at, assay_tsvector(coalesce(CASE WHEN f.settings ->> 'type' "
        "IS DISTINCT FROM 'chat' AND json_typeof(doc -> f.name) = 'string' THEN doc ->> f.name "
        "ELSE assay_field_text(doc -> f.name, f.settings ->> 'type' = 'chat') END, '')) AS tsv "
        "FROM fields AS f WHERE f.dataset_id = dataset AND f.settings ->> 'type' IS DISTINCT FROM 'image') "
        "SELECT 'f' || id::text, tsv FROM parts UNION ALL "
        f"SELECT 'd' || dataset::text, coalesce(assay_tsvector_agg(tsv || '{FIELD_BREAK}:1'::tsvector "
        "ORDER BY inserted_at, id), ''::tsvector) FROM parts $$",
        # Statement-level triggers with transition tables: one INSERT ... SELECT per statement (Argilla
        # inserts a bulk of records in one statement); a row-level plpgsql trigger cost ~30 % of push speed.
        _pg_trigger_function(
            "assay_records_text_ins", "INSERT INTO assay_text_rows (record_id, scope, tsv) " + _PG_ROWS_OF_NEW
        ),
        # An update re-indexes only records whose fields changed (a response changes the status alone).
        _pg_trigger_function(
            "assay_records_text_upd",
            "DELETE FROM assay_text_rows WHERE record_id IN (SELECT o.id FROM old_rows AS o "
            "JOIN new_rows AS n ON n.id = o.id WHERE n.fields::text IS DISTINCT FROM o.fields::text "
            "OR n.dataset_id <> o.dataset_id); "
            "INSERT INTO assay_text_rows (record_id, scope, tsv) "
            + _PG_ROWS_OF_NEW
            + " JOIN old_rows AS o ON o.id = n.id "
            "WHERE n.fields::text IS DISTINCT FROM o.fields::text OR n.dataset_id <> o.dataset_id",
        ),
        _pg_trigger_function(
            "assay_records_text_del",
            "DELETE FROM assay_text_rows WHERE record_id IN (SELECT id FROM old_rows)",
        ),
        "CREATE TRIGGER assay_records_text_ins AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_text_ins()",
        "CREATE TRIGGER assay_records_text_upd AFTER UPDATE ON records "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_text_upd()",
        "CREATE TRIGGER assay_records_text_del AFTER DELETE ON records REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_text_del()",
    ]


_PG_ROWS_OF_NEW = (
    "SELECT n.id, t.scope, t.tsv FROM new_rows AS n "
    "CROSS JOIN LATERAL assay_record_text(n.dataset_id, n.fields) AS t"
)


def _pg_trigger_function(name: str, body: str) -> str:
    """A statement-level trigger function; JIT off, as the metadata index's (``metaindex.PG_TRIGGER_SETTINGS``)."""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {metaindex.PG_TRIGGER_SETTINGS} "
        f"AS $$ BEGIN {body}; RETURN NULL; END $$"
    )


_PG_BACKFILL = (
    "INSERT INTO assay_text_rows (record_id, scope, tsv) SELECT r.id, t.scope, t.tsv "
    "FROM records AS r CROSS JOIN LATERAL assay_record_text(r.dataset_id, r.fields) AS t",
)
