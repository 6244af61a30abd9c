"""Start, stop and inspect the embedded Argilla stack of a workspace (DESIGN §6).

Everything lives in one directory, the Argilla home of a workspace (``<workspace>/argilla``)::

    secrets.json   owner credentials and the auth secret key (mode 0600, generated once)
    server.json    url, port, database and redis of the running stack
    server.pid  worker.pid  redis.pid      logs/{server,worker,redis}.log
    data/          ARGILLA_HOME_PATH (the SQLite database by default)
    tmp/           TMPDIR of the server processes (argilla-server copies its web UI there)

The argilla-server venv is not in it: every workspace of the user shares one, in the user cache (or at
$ASSAY_ARGILLA_VENV; see ``serverenv.py``).

The processes are detached, so they outlive the `assay` command that started them. They only speak HTTP
with assay; argilla_server itself is never imported on this side.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assay.errors import AssayError, ConfigError, WorkspaceError
from assay.label.config import LabelConfig
from assay.label.server import procs, redisctl
from assay.label.server.serverenv import Progress, default_progress, ensure_server_env, server_venv_dir
from assay.store.atomic import write_bytes_atomic

DEFAULT_PORT = LabelConfig.model_fields["port"].default  # one home: `label.port` in assay.toml
OWNER_USERNAME = "assay-owner"
DEFAULT_WORKSPACE = "assay"
ENGINE_NAME = "assaydb"  # must equal engine/__init__.py's ENGINE_NAME (it only imports in the server venv)
LAUNCHER = Path(__file__).with_name("launcher.py")
SERVER_MARKER = "launcher.py serve"
WORKER_MARKER = "launcher.py worker"
START_TIMEOUT = 120.0
SERVE_HINT = "start it with `assay label serve`"


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server: where it answers and how to sign in as its owner."""

    url: str
    port: int
    pid: int
    worker_pid: int | None
    home: Path
    username: str
    api_key: str = field(repr=False)
    password: str = field(repr=False)
    database_url: str = field(repr=False)
    redis_url: str
    redis_managed: bool
    startup_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, without secrets (the database URL loses its password)."""
        data = asdict(self)
        data.update(home=str(self.home), database_url=redact_url(self.database_url))
        data.pop("api_key")
        data.pop("password")
        return data


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


# -- workspace files --------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by the owner only (0600 from the first byte), replacing it atomically."""
    write_bytes_atomic(path, text.encode(), mode=0o600)


def load_secrets(home: Path) -> dict[str, str]:
    """The owner's credentials and the auth secret key, generated on first use and kept in secrets.json.

    A fixed ARGILLA_AUTH_SECRET_KEY keeps UI sessions valid across restarts.
    """
    path = Path(home) / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {
        "username": OWNER_USERNAME,
        "password": secrets.token_urlsafe(18),
        "api_key": "assay." + secrets.token_urlsafe(32),
        "auth_secret_key": secrets.token_hex(32),
        "workspace": DEFAULT_WORKSPACE,
    }
    _write_private(path, json.dumps(values, indent=2) + "\n")
    return values


def _state(home: Path) -> dict[str, Any]:
    try:
        return json.loads((home / "server.json").read_text())
    except (OSError, ValueError):
        return {}


def default_database_url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{Path(home) / 'data' / 'argilla.db'}?check_same_thread=False"


# -- start ------------------------------------------------------------------------------------------------


def start_server(
    home: Path,
    port: int = DEFAULT_PORT,
    database_url: str | None = None,
    redis_url: str | None = None,
    *,
    venv_dir: Path | None = None,
    timeout: float = START_TIMEOUT,
    progress: Progress | None = default_progress,
) -> ServerInfo:
    """Start argilla-server (with assay's search engine) and its worker for this workspace; wait until ready.

    Database: `database_url`, else $ARGILLA_DATABASE_URL, else SQLite in `home/data`. Redis: `redis_url` or
    $ARGILLA_REDIS_URL when it answers, else a private one. Example:
    ``info = start_server(Path(".assay/argilla")); rg.Argilla(api_url=info.url, api_key=info.api_key)``
    """
    home = Path(home).absolute()
    say = progress or (lambda message: None)
    _refuse_if_running(home)
    if not procs.port_is_free(port):
        raise ConfigError(
            f"port {port} on 127.0.0.1 is already in use by another program",
            hint="choose another port, e.g. `assay label serve --port 6901`",
        )
    python = ensure_server_env(venv_dir or server_venv_dir(), progress=progress)
    began = time.monotonic()
    credentials = load_secrets(home)
    database_url = database_url or os.environ.get("ARGILLA_DATABASE_URL") or default_database_url(home)
    redis_url, redis_managed = _resolve_redis(home, redis_url or os.environ.get("ARGILLA_REDIS_URL"), say)
    url = f"http://127.0.0.1:{port}"
    state = {
        "url": url,
        "port": port,
        "database_url": database_url,
        "redis_url": redis_url,
        "redis_managed": redis_managed,
    }
    try:
        _launch(home, python, port, _server_env(home, credentials, database_url, redis_url), state, timeout)
    except BaseException:
        stop_server(home)  # never leave half a stack (or a private Redis) behind
        raise
    info = _info(home, state, credentials, startup_seconds=round(time.monotonic() - began, 2))
    say(f"Argilla is ready at {url} ({info.startup_seconds} s); owner `{credentials['username']}`")
    return info


def _launch(
    home: Path, python: Path, port: int, env: dict[str, str], state: dict[str, Any], timeout: float
) -> None:
    """The server first, the worker once the API answers: on two cores the worker's import would slow the
    server's start, and jobs enqueued meanwhile simply wait in Redis."""
    _clean_tmp(home)
    pid = _spawn(python, ["serve", "--port", str(port)], home, env, "server")
    _write_private(home / "server.json", json.dumps(state, indent=2) + "\n")
    _wait_ready(home, state["url"], pid, timeout)
    _spawn(python, ["worker", "--num-workers", "1"], home, env, "worker")


def _refuse_if_running(home: Path) -> None:
    pid = procs.running_pid(home / "server.pid", SERVER_MARKER)
    if pid is not None:
        url = _state(home).get("url", "?")
        raise ConfigError(
            f"an Argilla server for this workspace is already running at {url} (pid {pid})",
            hint="use it, or stop it first with `assay label stop`",
        )
    # Leftovers of a crashed stack: nothing of ours may keep running before a fresh start.
    for name, marker in (("worker", WORKER_MARKER), ("redis", redisctl.REDIS_MARKER)):
        procs.stop(home / f"{name}.pid", marker, timeout=5)


def _resolve_redis(home: Path, url: str | None, say: Progress) -> tuple[str, bool]:
    if url and redisctl.ping(url):
        return url, False
    if url:
        say(f"Redis at {url} does not answer; starting a private one for this workspace")
    managed_url, _ = redisctl.start_managed(home)
    return managed_url, True


def _clean_tmp(home: Path) -> None:
    """Every argilla_server import copies its 14 MB web UI into TMPDIR and never removes it.

    Nothing of this workspace runs now, so every copy there is stale.
    """
    tmp = home / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in ("server", "worker"):
        (tmp / name).mkdir(parents=True, exist_ok=True)


def _server_env(home: Path, credentials: dict[str, str], database_url: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        ARGILLA_HOME_PATH=str(home / "data"),
        ARGILLA_DATABASE_URL=database_url,
        ARGILLA_REDIS_URL=redis_url,
        ARGILLA_SEARCH_ENGINE=ENGINE_NAME,
        ARGILLA_AUTH_SECRET_KEY=credentials["auth_secret_key"],
        ASSAY_ARGILLA_SECRETS=str(home / "secrets.json"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _spawn(python: Path, args: list[str], home: Path, env: dict[str, str], name: str) -> int:
    own_env = {**env, "TMPDIR": str(home / "tmp" / name)}
    log = home / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")  # one log per run: the error tail must not show an older run
    command = [str(python), str(LAUNCHER), *args]
    return procs.spawn(command, env=own_env, log=log, pid_file=home / f"{name}.pid", cwd=home)


def _wait_ready(home: Path, url: str, pid: int, timeout: float) -> None:
    """Poll /api/v1/version; on exit or timeout stop what was started and show the server log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _version(url) is not None:
            return
        if not procs.is_alive(pid):
            break
        time.sleep(0.2)
    reason = "exited" if not procs.is_alive(pid) else f"did not answer within {timeout:.0f} s"
    log = home / "logs" / "server.log"
    tail = procs.log_tail(log)
    raise AssayError(
        f"argilla-server {reason}; the end of {log}:\n{tail}",
        hint="fix the cause shown in the log (database URL, Redis, port) and run `assay label serve` again",
    )


# The server is on 127.0.0.1: never send these requests through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _version(url: str) -> str | None:
    try:
        with _OPENER.open(f"{url}/api/v1/version", timeout=2) as response:
            return json.loads(response.read()).get("version")
    except (OSError, ValueError):
        return None


def _info(
    home: Path, state: dict[str, Any], credentials: dict[str, str], startup_seconds: float | None = None
) -> ServerInfo:
    return ServerInfo(
        url=state["url"],
        port=state["port"],
        pid=procs.read_pid(home / "server.pid") or 0,
        worker_pid=procs.running_pid(home / "worker.pid"),  # no marker: it may not have exec()ed yet
        home=home,
        username=credentials["username"],
        api_key=credentials["api_key"],
        password=credentials["password"],
        database_url=state["database_url"],
        redis_url=state["redis_url"],
        redis_managed=state["redis_managed"],
        startup_seconds=startup_seconds,
    )


# -- stop, find ------------------------------------------------------------------------------------------


def stop_server(home: Path) -> bool:
    """Stop the server, its worker and a private Redis; returns whether the server was running."""
    home = Path(home).absolute()
    was_running = procs.stop(home / "server.pid", SERVER_MARKER)
    procs.stop(home / "worker.pid", WORKER_MARKER)
    procs.stop(home / "redis.pid", redisctl.REDIS_MARKER)
    (home / "server.json").unlink(missing_ok=True)
    shutil.rmtree(home / "tmp", ignore_errors=True)
    return was_running


def require_server(home: Path) -> ServerInfo:
    """The running server of this workspace, or an error saying how to start one."""
    home = Path(home).absolute()
    state = _state(home)
    if procs.running_pid(home / "server.pid", SERVER_MARKER) is None or not state:
        raise WorkspaceError(f"no Argilla server is running for this workspace ({home})", hint=SERVE_HINT)
    return _info(home, state, load_secrets(home))
