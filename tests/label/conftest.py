"""A real embedded Argilla stack for the label tests: argilla-server 2.8 + assay's search engine + Redis.

The server venv is built once per machine (``$ASSAY_ARGILLA_VENV``, default ``<repo>/.venv-argilla``) and
one server is started per test session in a temporary home. The database is SQLite unless
``ASSAY_TEST_ARGILLA_DB`` says ``postgresql`` (a fresh ``assay_test_<hex>`` database, dropped afterwards)
or ``both``; the PostgreSQL server comes from ``ASSAY_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). Redis: the machine's at 127.0.0.1:6379 when it
answers (on a random database number, so parallel sessions don't share queues), else a private one.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from assay.label.server import ServerInfo, ensure_server_env, procs, redisctl, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
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
    venv = Path(os.environ.get("ASSAY_ARGILLA_VENV") or REPO / ".venv-argilla")
    return ensure_server_env(venv)


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
