"""Detached background processes with pid files: start, check, stop.

The embedded stack (argilla-server, its rq worker, maybe redis) must outlive the `assay` command that
started it, so each runs in its own session with its output in a log file and its pid in a file. Liveness
checks tell zombies and recycled pids apart from our processes by reading /proc where it exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from assay.store.atomic import write_bytes_atomic


def spawn(command: list[str], *, env: dict[str, str], log: Path, pid_file: Path, cwd: Path) -> int:
    """Start `command` detached (own session and process group); returns its pid, also written to pid_file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    write_bytes_atomic(pid_file, f"{process.pid}\n".encode())
    return process.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _reap(pid: int) -> bool:
    """Collect an exited child of this process; True when it has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def is_alive(pid: int | None, marker: str | None = None) -> bool:
    """Whether pid runs (not a zombie) and, when /proc shows its command line, that it contains `marker`."""
    if not pid or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return marker is None
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True
    with contextlib.suppress(OSError):
        if (proc / "stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    if marker is None:
        return True
    try:
        return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False


def running_pid(pid_file: Path, marker: str | None = None) -> int | None:
    pid = read_pid(pid_file)
    return pid if is_alive(pid, marker) else None


def stop(pid_file: Path, marker: str | None = None, *, timeout: float = 15.0) -> bool:
    """SIGTERM the process group we started, SIGKILL it after `timeout`; returns whether one was running."""
    pid = running_pid(pid_file, marker)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid, marker):
        time.sleep(0.1)
    if is_alive(pid, marker):
        _signal_group(pid, signal.SIGKILL)
        time.sleep(0.2)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: int) -> None:
    """The process was started as a session leader, so its group id is its pid (children included)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port (same SO_REUSEADDR setting as uvicorn)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        return "".join(log.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"
