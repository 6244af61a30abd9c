"""The SQLite catalog (WAL mode): every version with kind, parents, config hash, time, tags and status.

Payloads live as files beside it; the catalog is the source of truth for what is visible,
so a version directory that is not recorded here does not exist for any reader.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assay.errors import ConfigError, NotFoundError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY,
    family TEXT NOT NULL,           -- dataset | model | report
    kind TEXT NOT NULL,             -- raw | curated | approved | mix | model | report
    name TEXT,
    parents TEXT NOT NULL,          -- JSON list of version ids
    config_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'ready',
    rows INTEGER,
    path TEXT NOT NULL,             -- relative to the workspace root
    manifest_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_family ON versions(family, created_at);
CREATE TABLE IF NOT EXISTS tags (
    tag TEXT PRIMARY KEY,
    version_id TEXT NOT NULL REFERENCES versions(id),
    created_at TEXT NOT NULL
);
-- A recipe key (inputs' hashes + resolved config) remembers which version a run produced,
-- so rerunning the same command is a no-op that does not redo the work.
CREATE TABLE IF NOT EXISTS recipes (key TEXT PRIMARY KEY, version_id TEXT NOT NULL REFERENCES versions(id));
-- What happened to model versions (promoted, rejected, forced), by whom, on which report: append-only.
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,           -- promote | reject | demote
    version_id TEXT NOT NULL REFERENCES versions(id),
    report_id TEXT,
    alias TEXT,
    actor TEXT NOT NULL,
    reason TEXT,
    forced INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Entry:
    """One catalogued version."""

    id: str
    family: str
    kind: str
    name: str | None
    parents: list[str]
    config_hash: str
    created_at: str
    status: str
    rows: int | None
    path: str
    manifest_sha256: str
    tags: list[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Catalog:
    """Thin typed access to the catalog database; one short transaction per call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    def create(self) -> None:
        with self.connect() as conn:
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def add(self, entry: Entry, recipe_key: str | None = None) -> bool:
        """Record a version (and its recipe key) in one transaction; False if it was already there."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO versions(id, family, kind, name, parents, config_hash, created_at,"
                    " status, rows, path, manifest_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (entry.id, entry.family, entry.kind, entry.name, json.dumps(entry.parents),
                     entry.config_hash, entry.created_at, entry.status, entry.rows, entry.path,
                     entry.manifest_sha256),
                )
                if recipe_key:
                    conn.execute(
                        "INSERT OR REPLACE INTO recipes(key, version_id) VALUES (?, ?)", (recipe_key, entry.id)
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return cur.rowcount == 1

    def recipe(self, key: str) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT version_id FROM recipes WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def entries(self, family: str | None = None) -> list[Entry]:
        sql = "SELECT * FROM versions" + (" WHERE family = ?" if family else "") + " ORDER BY created_at, id"
        with self.connect() as conn:
            rows = conn.execute(sql, (family,) if family else ()).fetchall()
            tags = self._tags(conn)
        return [_entry(r, tags.get(r["id"], [])) for r in rows]

    def get(self, version_id: str) -> Entry | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM versions WHERE id = ?", (version_id,)).fetchone()
            tags = self._tags(conn)
        return _entry(row, tags.get(row["id"], [])) if row else None

    def resolve(self, ref: str, family: str | None = None) -> Entry:
        """A full id, a unique id prefix, or a tag → its entry; errors say what was looked for."""
        with self.connect() as conn:
            tag = conn.execute("SELECT version_id FROM tags WHERE tag = ?", (ref,)).fetchone()
            ids = [tag[0]] if tag else [
                r[0] for r in conn.execute(
                    "SELECT id FROM versions WHERE id = ? OR id LIKE ? ESCAPE '\\'",
                    (ref, ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"),
                )
            ]
        if ref in ids:
            ids = [ref]
        entries = [e for e in (self.get(i) for i in dict.fromkeys(ids)) if e and (not family or e.family == family)]
        if not entries:
            what = f"{family} version" if family else "version"
            raise NotFoundError(f"no {what} or tag named `{ref}`", hint="list them with `assay data list`")
        if len(entries) > 1:
            raise ConfigError(
                f"`{ref}` matches {len(entries)} versions: {', '.join(e.id for e in entries[:5])}",
                hint="give more characters of the id",
            )
        return entries[0]

    def tag(self, version_id: str, tag: str, created_at: str, *, force: bool = False) -> str | None:
        """Point a tag at a version; returns the version it pointed at before (moving needs force)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            old = conn.execute("SELECT version_id FROM tags WHERE tag = ?", (tag,)).fetchone()
            if old and old[0] != version_id and not force:
                conn.execute("ROLLBACK")
                raise ConfigError(
                    f"tag `{tag}` already points at {old[0]}", hint="pass --force to move it"
                )
            conn.execute(
                "INSERT OR REPLACE INTO tags(tag, version_id, created_at) VALUES (?, ?, ?)",
                (tag, version_id, created_at),
            )
            conn.execute("COMMIT")
        return old[0] if old else None

    def add_event(self, event: dict) -> None:
        """Append one event (promote, reject, demote) to the history, with the status change in one transaction."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO events(at, action, version_id, report_id, alias, actor, reason, forced) VALUES (?,?,?,?,?,?,?,?)",
                (event["at"], event["action"], event["version_id"], event.get("report_id"), event.get("alias"),
                 event["actor"], event.get("reason"), int(bool(event.get("forced")))),
            )
            if event.get("status"):
                conn.execute("UPDATE versions SET status = ? WHERE id = ?", (event["status"], event["version_id"]))
            conn.execute("COMMIT")

    def events(self) -> list[dict]:
        with self.connect() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM events ORDER BY seq")]

    def set_status(self, version_id: str, status: str) -> None:
        with self.connect() as conn:
            conn.execute("UPDATE versions SET status = ? WHERE id = ?", (status, version_id))

    def remove(self, version_id: str) -> None:
        """Forget a version (used by doctor for entries whose payload is gone)."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM tags WHERE version_id = ?", (version_id,))
            conn.execute("DELETE FROM recipes WHERE version_id = ?", (version_id,))
            conn.execute("DELETE FROM versions WHERE id = ?", (version_id,))
            conn.execute("COMMIT")

    @staticmethod
    def _tags(conn: sqlite3.Connection) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for tag, vid in conn.execute("SELECT tag, version_id FROM tags ORDER BY tag"):
            out.setdefault(vid, []).append(tag)
        return out


def _entry(row: sqlite3.Row, tags: list[str]) -> Entry:
    data = dict(row)
    data["parents"] = json.loads(data["parents"])
    return Entry(**data, tags=tags)
