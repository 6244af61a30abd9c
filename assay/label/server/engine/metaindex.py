"""PostgreSQL: an index of the records' metadata values, kept in step by triggers on Argilla's ``records`` table.

Why: a metadata filter's count read every record's JSON metadata (a jsonb parse and a jsonpath walk per
record: 250-450 ms at 100k records). The side table ``assay_metadata_values`` holds one row per element of
every metadata value (a list gives one row per element, the elements of lists inside it included, as
Elasticsearch flattens arrays; any other value one row), so a filter is a range
or equality scan of a btree and a semi-join on the record id, a filter of metadata leaves only is counted
from the index alone, and a metadata metric (term counts, min/max) reads the same index.

Each row: ``record_id``, ``dataset_id``, ``key`` (keys longer than Argilla's 200-character property names
are left out: no property can name them), ``kind`` (``s`` string, ``n`` number, ``b`` boolean, ``z`` null,
``o`` object or list), ``num`` (a number element's value) and the element's text. The matching rules stay
jsonpath's, as before the index: strings match strings, numbers by value, booleans "true"/"false", ranges
compare strings by code point (the text columns use the "C" collation).

Besides the record id's btree, each row is in one of two partial btrees: a number's (kind ``n``) by
``(dataset_id, key, num)``, any other element's by ``(dataset_id, key, kind, pre)``; number conditions
say ``kind = 'n'`` (only numbers have a ``num``) so the planner reads the first, and a terms metric says
either kind. Two full btrees cost ~35 µs more per record of a push (9 metadata values a record).

Btree entries must stay under ~2.7 KB, so the text is kept as ``pre`` (its first 200 characters,
indexed) plus ``rest`` (the whole text, only when it is longer). A bound shorter than 200 characters
compares the same against ``pre`` as against the whole text; a longer one rechecks the whole.

Triggers mirror the text index's (``indexes.py``): statement-level with transition tables (one INSERT ...
SELECT per statement; updates re-index only records whose metadata changed), without JIT
(``PG_TRIGGER_SETTINGS``). ``rebuild`` creates everything and backfills existing records in the
transaction that creates the triggers.

SQLite has no such index: its per-row triggers cost ~350 µs per record of a push (9 metadata values a
record, three btrees each: ~15 % of the server's time), while its queries on the records' JSON already
answer in ~110 ms at 100k records. ``drop_sqlite`` removes what an earlier version built there.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from argilla_server.search_engine.base import Filter, TermsFilter
from sqlalchemy import (
    Float,
    Text,
    and_,
    column,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from .values import as_float, text_bound

# 3: partial btrees (numbers, other kinds), keys in the "C" collation, triggers without JIT; 2: elements of
# nested lists indexed (1: only a top-level list's)
SCHEMA_VERSION = "3"
# Trigger functions run without JIT: a bulk's transition table unnested into JSON elements is estimated at
# millions of rows, over jit_above_cost, and compiling that statement (inlining and optimising) cost more
# than indexing its rows (an INSERT of 1,000 records, rolled back: this trigger took 360 ms, 175 without).
PG_TRIGGER_SETTINGS = "SET jit = off"
MAX_KEY = 200  # Argilla's longest metadata property name
PREFIX = 200  # characters of a text kept in the indexed `pre` column (PostgreSQL)

VALUES = table(
    "assay_metadata_values",
    column("record_id"),
    column("dataset_id"),
    column("key"),
    column("kind"),
    column("num", Float),
    column("pre", Text),
    column("rest", Text),
)


async def rebuild(db: AsyncSession) -> None:
    """Drop and recreate the side table and its triggers, then fill it from the existing records."""
    for statement in (*_PG_DROP, *_pg_create(), _PG_BACKFILL):
        await db.execute(text(statement))


async def drop_sqlite(db: AsyncSession) -> None:
    for statement in _SQLITE_DROP:
        await db.execute(text(statement))


# Filters and metrics ------------------------------------------------------------------------------------


def record_ids(dataset_id: UUID, name: str, filter: Filter, *, numeric: bool) -> Select | None:
    """SELECT the ids of the records with an element of metadata `name` that passes the filter (a record
    with several passing elements appears once per element); None: nothing can pass."""
    passes = _pg_passes(filter, numeric)
    if passes is None:
        return None
    return select(VALUES.c.record_id).where(VALUES.c.dataset_id == dataset_id, VALUES.c.key == name, passes)


def element_rows(dataset_id: UUID, name: str, *, numeric: bool) -> tuple[Any, ColumnElement, ColumnElement]:
    """(FROM, element number, element text) of one property's indexed elements, for metrics: the numbers
    only for a number property (only they have one), every element for a terms property."""
    # Tied term counts are ordered in the database's collation, as the JSON text was.
    body = func.coalesce(VALUES.c.rest, VALUES.c.pre).collate("default")
    # Every kind, said so that the planner can read both partial btrees (a BitmapOr) when the property is a
    # small part of the table; for most of it, it reads the table once (a UNION ALL of the two read it twice).
    kinds = _pg_kind_in("n") if numeric else or_(_pg_kind_in("n"), VALUES.c.kind != literal_column("'n'"))
    rows = select(VALUES.c.num, body.label("body")).where(
        VALUES.c.dataset_id == dataset_id, VALUES.c.key == name, kinds
    )
    rows = rows.subquery()
    return rows, rows.c.num, rows.c.body


def _numbers(values: list[Any]) -> list[float]:
    return [n for n in map(as_float, values) if n is not None]


def _pg_passes(filter: Filter, numeric: bool) -> ColumnElement | None:
    """jsonpath semantics: strings equal strings, numbers by value, booleans "true"/"false"; string ranges
    compare strings only, by code point."""
    number = VALUES.c.num
    # Only numbers have a `num` (kind "n"): saying so lets the planner read their partial btree.
    if isinstance(filter, TermsFilter):
        numbers = _numbers(list(filter.values))
        clauses = [and_(_pg_kind_in("n"), number.in_(numbers))] if numbers else []
        if not numeric:
            words = [str(v) for v in filter.values]
            clauses += [and_(_pg_kind_in("s", "b"), _pg_text_in(words))] if words else []
        return or_(false(), *clauses) if clauses else None
    bounds = _bounds(filter, as_float if numeric else text_bound)
    if bounds is None:
        return None
    if numeric:
        compared = [op(number, value) for op, value in bounds]
        return and_(_pg_kind_in("n"), *compared) if compared else true()
    return and_(_pg_kind_in("s"), *[_pg_text_compare(op, value) for op, value in bounds])


def _pg_kind_in(*kinds: str) -> ColumnElement:
    """Kinds as literals: a bound parameter would be compared as text, hiding the column from its index
    and from the planner's estimates (a 90 % filter estimated at 0.5 % chose a 90k-row nested loop)."""
    return VALUES.c.kind.in_([literal_column(f"'{kind}'") for kind in kinds])


def _pg_text_in(words: list[str]) -> ColumnElement:
    pre, rest = VALUES.c.pre, VALUES.c.rest
    short = [w for w in words if len(w) < PREFIX]
    clauses = [pre.in_(short)] if short else []
    clauses += [and_(pre == w[:PREFIX], rest == w) for w in words if len(w) >= PREFIX]
    return or_(false(), *clauses)


def _pg_text_compare(op: Any, bound: str) -> ColumnElement:
    """`pre` orders as the whole text against a bound shorter than PREFIX; a longer bound is checked on the
    whole text, with the bound's prefix (which any passing text's `pre` also passes) for the index."""
    pre = VALUES.c.pre
    if len(bound) < PREFIX:
        return op(pre, bound)
    return and_(op(pre, bound[:PREFIX]), op(func.coalesce(VALUES.c.rest, pre), bound))


def _bounds(filter: Filter, parse: Any) -> list[tuple[Any, Any]] | None:
    """[(operator, parsed bound)] of a range filter; None when a bound does not parse (matches nothing)."""
    out = []
    for bound, op in ((filter.ge, ColumnElement.__ge__), (filter.le, ColumnElement.__le__)):
        if bound is None:
            continue
        parsed = parse(bound)
        if parsed is None:
            return None
        out.append((op, parsed))
    return out


# SQLite: what an earlier version built ---------------------------------------------------------------

_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS assay_records_metadata_ai",
    "DROP TRIGGER IF EXISTS assay_records_metadata_au",
    "DROP TRIGGER IF EXISTS assay_records_metadata_ad",
    "DROP TABLE IF EXISTS assay_metadata_values",
)


# PostgreSQL --------------------------------------------------------------------------------------------

_PG_TRIGGERS = ("assay_records_metadata_ins", "assay_records_metadata_upd", "assay_records_metadata_del")
_PG_DROP = (
    *(f"DROP TRIGGER IF EXISTS {name} ON records" for name in _PG_TRIGGERS),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in _PG_TRIGGERS),
    "DROP TABLE IF EXISTS assay_metadata_values",
    "DROP FUNCTION IF EXISTS assay_metadata_rows(json)",
    "DROP FUNCTION IF EXISTS assay_metadata_number(text)",
    "DROP FUNCTION IF EXISTS assay_json_flat(json)",
)

_PG_ROWS_OF_NEW = (
    "SELECT n.id, n.dataset_id, t.key, t.kind, t.num, t.pre, t.rest FROM new_rows AS n "
    "CROSS JOIN LATERAL assay_metadata_rows(n.metadata) AS t"
)
_PG_COLUMNS = "(record_id, dataset_id, key, kind, num, pre, rest)"
_PG_CHANGED = "n.metadata::text IS DISTINCT FROM o.metadata::text OR n.dataset_id <> o.dataset_id"


def _pg_create() -> list[str]:
    return [
        "CREATE TABLE assay_metadata_values (record_id uuid NOT NULL, dataset_id uuid NOT NULL, "
        'key varchar COLLATE "C" NOT NULL, kind "char" NOT NULL, num float8, pre text COLLATE "C", '
        'rest text COLLATE "C")',
        "CREATE INDEX ix_assay_metadata_values_record ON assay_metadata_values (record_id)",
        # Each element in one of two partial btrees: numbers by value, every other kind by its text.
        "CREATE INDEX ix_assay_metadata_values_num ON assay_metadata_values (dataset_id, key, num, record_id) "
        "WHERE kind = 'n'",
        "CREATE INDEX ix_assay_metadata_values_pre ON assay_metadata_values (dataset_id, key, kind, pre, record_id) "
        "WHERE kind <> 'n'",
        # A JSON number as float8, or NULL where float8 cannot hold it (a cast would fail the write).
        "CREATE FUNCTION assay_metadata_number(body text) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$ "
        "SELECT CASE WHEN n = 0 OR abs(n) BETWEEN 1e-300 AND 1e300 THEN n::float8 END FROM (SELECT CASE "
        "WHEN length(body) <= 300 AND body !~ '[eE][-+]?0*[1-9][0-9]{3}' THEN body::numeric END AS n) AS s $$",
        # A list with the lists inside it unnested, at any depth ([["a", "b"], "c"] gives ["a", "b", "c"], as
        # Elasticsearch flattens arrays); a list without a "[" after its first character is returned as it is.
        "CREATE FUNCTION assay_json_flat(doc json) RETURNS json LANGUAGE sql IMMUTABLE AS $$ "
        "SELECT CASE WHEN strpos(substr(doc::text, 2), '[') = 0 THEN doc ELSE (WITH RECURSIVE items(v) AS "
        "(SELECT doc UNION ALL SELECT e.value FROM items AS i CROSS JOIN LATERAL "
        "json_array_elements(CASE WHEN json_typeof(i.v) = 'array' THEN i.v END) AS e) "
        "SELECT coalesce(json_agg(items.v), '[]'::json) FROM items WHERE json_typeof(items.v) <> 'array') END $$",
        # One row per element of a list (of the flattened list), one row for any other value.
        "CREATE FUNCTION assay_metadata_rows(doc json) RETURNS TABLE "
        '(key varchar, kind "char", num float8, pre text, rest text) LANGUAGE sql IMMUTABLE AS $$ '
        "SELECT m.key, t.kind, CASE WHEN t.kind = 'n' THEN assay_metadata_number(t.body) END, "
        f"left(t.body, {PREFIX}), CASE WHEN length(t.body) > {PREFIX} THEN t.body END "
        "FROM json_each(CASE WHEN json_typeof(doc) = 'object' THEN doc END) AS m "
        "CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(m.value) = 'array' "
        "THEN assay_json_flat(m.value) ELSE json_build_array(m.value) END) AS e(v) "
        "CROSS JOIN LATERAL (SELECT e.v #>> '{}' AS body, CASE json_typeof(e.v) WHEN 'string' THEN 's' "
        "WHEN 'number' THEN 'n' WHEN 'boolean' THEN 'b' WHEN 'null' THEN 'z' ELSE 'o' END::\"char\" AS kind) "
        f"AS t WHERE length(m.key) <= {MAX_KEY} $$",
        _pg_trigger_function(
            "assay_records_metadata_ins", f"INSERT INTO assay_metadata_values {_PG_COLUMNS} {_PG_ROWS_OF_NEW}"
        ),
        _pg_trigger_function(
            "assay_records_metadata_upd",
            "DELETE FROM assay_metadata_values WHERE record_id IN (SELECT o.id FROM old_rows AS o "
            f"JOIN new_rows AS n ON n.id = o.id WHERE {_PG_CHANGED}); "
            f"INSERT INTO assay_metadata_values {_PG_COLUMNS} {_PG_ROWS_OF_NEW} "
            f"JOIN old_rows AS o ON o.id = n.id WHERE {_PG_CHANGED}",
        ),
        _pg_trigger_function(
            "assay_records_metadata_del",
            "DELETE FROM assay_metadata_values WHERE record_id IN (SELECT id FROM old_rows)",
        ),
        "CREATE TRIGGER assay_records_metadata_ins AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_metadata_ins()",
        "CREATE TRIGGER assay_records_metadata_upd AFTER UPDATE ON records "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_metadata_upd()",
        "CREATE TRIGGER assay_records_metadata_del AFTER DELETE ON records REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION assay_records_metadata_del()",
    ]


def _pg_trigger_function(name: str, body: str) -> str:
    """A statement-level trigger function, JIT off (PG_TRIGGER_SETTINGS)."""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {PG_TRIGGER_SETTINGS} "
        f"AS $$ BEGIN {body}; RETURN NULL; END $$"
    )


_PG_BACKFILL = (
    f"INSERT INTO assay_metadata_values {_PG_COLUMNS} SELECT r.id, r.dataset_id, t.key, t.kind, t.num, "
    "t.pre, t.rest FROM records AS r CROSS JOIN LATERAL assay_metadata_rows(r.metadata) AS t"
)
