"""A real embedded Argilla stack for the label tests: argilla-server 2.8 + assay's search engine + Redis.

The server venv is the one `assay label serve` uses (``server_venv_dir()``: built once per machine and
user in the user cache, or at ``$ASSAY_ARGILLA_VENV``), and one server is started per test session in a
temporary home. The database is SQLite unless
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

from assay.label.server import (
    ServerInfo,
    ensure_server_env,
    procs,
    redisctl,
    server_venv_dir,
    start_server,
    stop_server,
)

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


# -- review (push/pull) fixtures: a workspace whose embedded server is the session's server -------------------


def _review_rows(n: int, shape: str) -> list[dict]:
    rows = []
    for i in range(n):
        row = {"id": f"{shape[0]}{i:03d}", "source": "review.jsonl", "source_line": i + 1,
               "split": "val" if i % 5 == 4 else "train", "dup_cluster": f"c{i}",
               "q_chars": 40 + 7 * i, "q_words": 8 + i, "q_alpha_ratio": 0.6 + i / 100,
               "pii_email": int(i == 2), "pii_any": i == 2}
        if shape == "chat":
            row["messages"] = [{"role": "user", "content": f"chat question {i}"}, {"role": "assistant", "content": f"chat answer {i}"}]
        elif shape == "text":
            row["text"] = f"plain domain text number {i} about sourdough bread"
        else:
            row |= {"prompt": f"review prompt {i}: what is {i} times three?", "response": f"It is {3 * i}."}
        rows.append(row)
    return rows


@pytest.fixture
def review_workspace(tmp_path, argilla_server: ServerInfo, monkeypatch):
    """A fresh workspace whose `argilla/` is the session server's home, so it counts as its embedded server."""
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)  # a developer's own server must not be used here
    ws, _ = Workspace.init(tmp_path / "ws")
    (ws.root / "argilla").symlink_to(argilla_server.home, target_is_directory=True)
    return ws


@pytest.fixture
def write_review_version():
    """Write a small curated version (shape prompt | chat | text) into a workspace; returns its id."""
    import polars as pl

    def write(ws, n: int = 12, shape: str = "prompt", tag: str = "") -> str:
        frame = pl.DataFrame(_review_rows(n, shape))
        config = {"quality": {"min_chars": 40, "min_words": 5, "min_alpha_word_ratio": 0.4}, "tag": tag}
        return ws.datasets.write(frame, kind="curated", config=config).version.id

    return write
