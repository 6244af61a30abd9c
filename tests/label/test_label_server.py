"""The embedded Argilla stack's manager: start, stop, status, users, and the errors a user can meet."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest

from assay.errors import AssayError, ConfigError, MissingDependencyError, WorkspaceError
from assay.label.server import (
    ServerInfo,
    add_user,
    ensure_server_env,
    load_secrets,
    procs,
    redisctl,
    require_server,
    server_status,
    serverenv,
    start_server,
    stop_server,
)


def test_not_running_errors_name_the_serve_command(tmp_path):
    with pytest.raises(WorkspaceError) as raised:
        require_server(tmp_path)
    assert "assay label serve" in str(raised.value) and raised.value.exit_code == 2
    with pytest.raises(WorkspaceError, match="assay label serve"):
        add_user(tmp_path, "alice")
    assert server_status(tmp_path)["running"] is False


def test_missing_redis_binary_says_how_to_install(monkeypatch):
    monkeypatch.setattr(redisctl.shutil, "which", lambda name: None)
    monkeypatch.setattr(redisctl.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError) as raised:
        redisctl.find_binary()
    assert "apt-get install redis-server" in str(raised.value) and "ARGILLA_REDIS_URL" in str(raised.value)


def test_redis_ping_reports_dead_urls():
    assert redisctl.ping(f"redis://127.0.0.1:{procs.free_port()}/0") is False


def test_failed_venv_build_shows_the_log_tail(tmp_path):
    failing = [
        sys.executable,
        "-c",
        "print('no matching distribution for argilla-server'); raise SystemExit(3)",
    ]
    with pytest.raises(MissingDependencyError) as raised:
        serverenv._run_logged(failing, tmp_path / "venv", lambda message: None)
    assert "no matching distribution" in str(raised.value) and "exited 3" in str(raised.value)


@pytest.mark.argilla
def test_current_venv_is_a_quick_no_op(argilla_python):
    began = time.monotonic()
    assert ensure_server_env(argilla_python.parent.parent, progress=None) == argilla_python
    assert time.monotonic() - began < 0.5


@pytest.mark.argilla
def test_status_of_the_running_server(argilla_server: ServerInfo):
    status = server_status(argilla_server.home)
    assert status["running"] is True and status["url"] == argilla_server.url
    assert status["worker_running"] is True
    assert {"username": "assay-owner", "role": "owner"} in status["users"]
    assert "api_key" not in status and "password" not in status
    assert isinstance(status["datasets"], list)


@pytest.mark.argilla
def test_secrets_are_private_and_stable(argilla_server: ServerInfo):
    path = argilla_server.home / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secrets(argilla_server.home)["api_key"] == argilla_server.api_key


@pytest.mark.argilla
def test_second_start_and_busy_port_are_refused(argilla_server: ServerInfo, tmp_path):
    with pytest.raises(ConfigError, match="already running") as raised:
        start_server(argilla_server.home, port=procs.free_port(), progress=None)
    assert "assay label stop" in str(raised.value)
    with pytest.raises(ConfigError, match="in use") as raised:
        start_server(tmp_path / "other", port=argilla_server.port, progress=None)
    assert "--port" in str(raised.value)


@pytest.mark.argilla
def test_add_user_and_duplicate_user(argilla_server: ServerInfo):
    user = add_user(argilla_server.home, "carol", role="annotator")
    assert user["username"] == "carol" and len(user["password"]) >= 8 and user["api_key"]
    with pytest.raises(ConfigError, match="carol"):
        add_user(argilla_server.home, "carol")
    with pytest.raises(ConfigError, match="role"):
        add_user(argilla_server.home, "dave", role="boss")


@pytest.mark.argilla
def test_start_stop_cycle_with_a_private_redis(tmp_path, argilla_python: Path, monkeypatch):
    monkeypatch.delenv("ARGILLA_REDIS_URL", raising=False)
    monkeypatch.delenv("ARGILLA_DATABASE_URL", raising=False)
    home = tmp_path / "argilla"
    info = start_server(home, port=procs.free_port(), venv_dir=argilla_python.parent.parent, progress=None)
    try:
        assert info.redis_managed and procs.running_pid(home / "redis.pid") is not None
        assert info.startup_seconds is not None and info.startup_seconds < 20
        deadline = time.monotonic() + 20
        while len(copies := list((home / "tmp").glob("*/tmp*/statics"))) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker imports argilla_server alongside the server, then drops its UI copy
        assert len(copies) == 1 and copies[0].parts[-3] == "server"
        assert server_status(home)["running"] is True
    finally:
        assert stop_server(home) is True
    assert server_status(home)["running"] is False
    assert procs.running_pid(home / "redis.pid") is None and not (home / "tmp").exists()
    assert stop_server(home) is False


@pytest.mark.argilla
def test_unreachable_database_fails_with_the_server_log(tmp_path, argilla_python: Path, redis_url):
    bad = f"postgresql+asyncpg://nobody@127.0.0.1:{procs.free_port()}/nothing"
    home = tmp_path / "argilla"
    with pytest.raises(AssayError) as raised:
        start_server(
            home,
            port=procs.free_port(),
            database_url=bad,
            redis_url=redis_url,
            venv_dir=argilla_python.parent.parent,
            progress=None,
        )
    assert "argilla-server exited" in str(raised.value) and "server.log" in str(raised.value)
    assert "refused" in str(raised.value).lower() or "connect" in str(raised.value).lower()
    assert procs.running_pid(home / "worker.pid") is None


def test_engine_name_matches_the_engine_module():
    """manager.py cannot import the engine (argilla_server lives in the other venv), so check the text."""
    from assay.label.server import manager

    engine_source = (Path(manager.__file__).with_name("engine") / "__init__.py").read_text()
    assert f'ENGINE_NAME = "{manager.ENGINE_NAME}"' in engine_source


def test_engine_imports_only_what_the_server_venv_has():
    """The engine runs where assay is not installed: stdlib, numpy, sqlalchemy, argilla_server, or its own modules."""
    import ast

    from assay.label.server import manager

    allowed = set(sys.stdlib_module_names) | {"numpy", "sqlalchemy", "argilla_server"}
    engine_dir = Path(manager.__file__).with_name("engine")
    modules = sorted(engine_dir.glob("*.py"))
    assert len(modules) > 1
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
