"""Shared fixtures: a fresh workspace per test and the real `assay` entry point."""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from assay.label.server import (
    ServerInfo,
    ensure_server_env,
    procs,
    redisctl,
    server_venv_dir,
    start_server,
    stop_server,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASSAY_BIN = Path(sys.executable).parent / "assay"


@pytest.fixture
def ws(tmp_path):
    from assay.workspace import Workspace

    workspace, _ = Workspace.init(tmp_path / "ws")
    return workspace


def write_jsonl(path: Path, rows: list, extra_lines: dict[int, str] | None = None) -> Path:
    """Rows as JSONL; extra_lines inserts raw text at 0-based line positions (for malformed input)."""
    lines = [json.dumps(r, ensure_ascii=False) if not isinstance(r, str) else r for r in rows]
    for pos, raw in sorted((extra_lines or {}).items()):
        lines.insert(pos, raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, check: int | None = 0) -> subprocess.CompletedProcess:
    """Run the installed `assay` console script, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k != "ASSAY_HOME"}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    proc = subprocess.run([str(ASSAY_BIN), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"assay {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_json(*args: str, **kw) -> dict:
    proc = run_cli(*args, "--json", **kw)
    return json.loads(proc.stdout)


def sentence(i: int) -> str:
    """An ordinary English sentence that passes the default quality filters, distinct per i."""
    return f"The library on street number {i} opens at nine and the staff lend books to every visitor."


# -- a real embedded Argilla stack (argilla-server 2.8 + assay's search engine + Redis), one per session -----------
# The server venv is the one `assay label serve` uses (built once per machine and user). The database is SQLite
# unless ASSAY_TEST_ARGILLA_DB says `postgresql` (a fresh database, dropped afterwards) or `both`; PostgreSQL
# comes from ASSAY_TEST_PG_URL. Redis: the machine's at 127.0.0.1:6379 when it answers, else a private one.

ENV_DB = "ASSAY_TEST_ARGILLA_DB"
ENV_PG = "ASSAY_TEST_PG_URL"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _databases() -> list[str]:
    choice = os.environ.get(ENV_DB, "sqlite").strip().lower()
    if choice == "both":
        return ["sqlite", "postgresql"]
    if choice not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"{ENV_DB} must be sqlite, postgresql or both (got {choice!r})")
    return [choice]


@pytest.fixture(scope="session")
def argilla_python() -> Path:
    """The argilla-server venv's interpreter (built on first use, minutes; then a quick no-op)."""
    return ensure_server_env(server_venv_dir())


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    return url if redisctl.ping(url) else None


def _pg_admin(python: Path, admin_url: str, sql: str) -> None:
    """Run one statement outside a transaction with the server venv's psycopg2 (assay's venv has no driver)."""
    code = "import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); c.autocommit = True; c.cursor().execute(sys.argv[2])"
    subprocess.run([str(python), "-c", code, admin_url, sql], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def database_url(request, argilla_python: Path) -> Iterator[str | None]:
    """None (SQLite in the server home) or the URL of a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield None
        return
    admin = os.environ.get(ENV_PG, DEFAULT_PG)
    name = f"assay_test_{secrets.token_hex(4)}"
    _pg_admin(argilla_python, admin, f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    yield urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))
    _pg_admin(argilla_python, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_generate_tests(metafunc):
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", _databases(), indirect=True, scope="session")


@pytest.fixture(scope="session")
def argilla_server(
    tmp_path_factory, argilla_python: Path, database_url: str | None, redis_url: str | None
) -> Iterator[ServerInfo]:
    """A running server for the session; stopped (and its home removed with tmp) at the end."""
    home = tmp_path_factory.mktemp("argilla-home")
    info = start_server(
        home,
        port=procs.free_port(),
        database_url=database_url,
        redis_url=redis_url,
        venv_dir=argilla_python.parent.parent,
        progress=None,
    )
    yield info
    stop_server(home)


@pytest.fixture
def review_workspace(tmp_path, argilla_server: ServerInfo, monkeypatch):
    """A fresh workspace whose `argilla/` is the session server's home, so it counts as its embedded server."""
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)  # a developer's own server must not be used here
    ws, _ = Workspace.init(tmp_path / "ws")
    (ws.root / "argilla").symlink_to(argilla_server.home, target_is_directory=True)
    return ws


