"""The argilla-server virtual environment: built once per machine and user, apart from assay's own.

argilla-server 2.8 pins old typer, pydantic and httpx and needs ``click<8.2``; installed next to assay it
would silently downgrade them. So it lives in its own venv (~600 MB), which every workspace of the user
shares: ``<user cache>/argilla-server-<version>-<stamp>`` (``assay.layout.user_cache_dir()``, i.e.
$ASSAY_CACHE_DIR, else $XDG_CACHE_HOME/assay, else ~/.cache/assay), or ``$ASSAY_ARGILLA_VENV``. The venv
holds only PyPI packages (assay's engine and launcher are loaded from assay's own files), so the stamp,
a hash of the pinned requirements and the Python minor version, says everything about its contents: it
names the default folder, so changed requirements build a new one beside the old, and written last into
the folder it marks a finished build, so a half-built venv is never taken for a finished one and the
check is a quick no-op. A file lock keeps two processes from building the same venv at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from assay.errors import MissingDependencyError
from assay.layout import user_cache_dir

ENV_VENV = "ASSAY_ARGILLA_VENV"
SERVER_VERSION = "2.8.0"
REQUIREMENTS = (f"argilla-server[postgresql]=={SERVER_VERSION}", "click<8.2", "numpy")
# Without pg_config (Debian: libpq-dev) psycopg2 cannot build from source; its wheel twin works the same.
FALLBACK_REQUIREMENTS = (
    f"argilla-server=={SERVER_VERSION}",
    "asyncpg~=0.30.0",
    "psycopg2-binary~=2.9.0",
    "click<8.2",
    "numpy",
)
STAMP_FILE = ".assay-stamp"
VENV_PREFIX = "argilla-server-"
LOCK_FILE = ".assay-build.lock"
LOG_FILE = "assay-install.log"
_SHOWN_PREFIXES = ("Building wheel", "Installing collected", "ERROR")

Progress = Callable[[str], None]


def default_progress(message: str) -> None:
    """Progress lines go to stderr so `--json` output on stdout stays clean."""
    print(f"assay: {message}", file=sys.stderr, flush=True)


def server_venv_dir() -> Path:
    """Where the server venv lives: $ASSAY_ARGILLA_VENV, else the user cache's folder for these requirements.

    Example: ``~/.cache/assay/argilla-server-2.8.0-<stamp>``, the same for every workspace of the user.
    """
    override = os.environ.get(ENV_VENV)
    if override:
        return Path(override).expanduser().absolute()
    return user_cache_dir() / f"{VENV_PREFIX}{SERVER_VERSION}-{_stamp()}"


def venv_python(venv_dir: Path) -> Path:
    return Path(venv_dir) / "bin" / "python"


def _stamp() -> str:
    """Changes whenever the pins or the interpreter's minor version change, forcing a rebuild."""
    pins = {"requirements": REQUIREMENTS, "fallback": FALLBACK_REQUIREMENTS}
    key = json.dumps({**pins, "python": list(sys.version_info[:2])})
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _read_stamp(venv_dir: Path) -> str | None:
    try:
        return (Path(venv_dir) / STAMP_FILE).read_text().strip()
    except OSError:
        return None


def is_current(venv_dir: Path) -> bool:
    """Whether a build for the current requirements finished in this folder (its stamp is written last)."""
    return venv_python(venv_dir).exists() and _read_stamp(venv_dir) == _stamp()


def outdated_server_envs() -> list[Path]:
    """Finished server venvs in the user cache built for other requirements: safe to delete."""
    root = user_cache_dir()
    if not root.is_dir():
        return []
    found = [path for path in root.glob(f"{VENV_PREFIX}*") if path.is_dir()]
    return sorted(path for path in found if _read_stamp(path) not in (None, _stamp()))


@contextmanager
def _locked(venv_dir: Path) -> Iterator[None]:
    """The lock lives inside the venv directory, so nothing lands beside it (e.g. in a repository root)."""
    venv_dir.mkdir(parents=True, exist_ok=True)
    with open(venv_dir / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_server_env(venv_dir: Path, *, progress: Progress | None = default_progress) -> Path:
    """Build the argilla-server venv unless it is already current; returns its python interpreter.

    Example: ``python = ensure_server_env(server_venv_dir())`` (about a minute the first time).
    """
    venv_dir = Path(venv_dir).absolute()
    say = progress or (lambda message: None)
    if is_current(venv_dir):
        return venv_python(venv_dir)
    with _locked(venv_dir):
        if is_current(venv_dir):  # another process finished the build while we waited
            return venv_python(venv_dir)
        _build(venv_dir, say)
    return venv_python(venv_dir)


def _build(venv_dir: Path, say: Progress) -> None:
    say(f"building the argilla-server environment in {venv_dir} (once; about a minute)")
    _create_venv(venv_dir)
    requirements = REQUIREMENTS
    if shutil.which("pg_config") is None:
        say("pg_config not found (Debian/Ubuntu: apt-get install libpq-dev); using the psycopg2-binary wheel")
        requirements = FALLBACK_REQUIREMENTS
    try:
        _pip_install(venv_dir, requirements, say)
    except MissingDependencyError:
        if requirements == FALLBACK_REQUIREMENTS:
            raise
        say("installing with the psycopg2 source build failed; retrying with the psycopg2-binary wheel")
        _pip_install(venv_dir, FALLBACK_REQUIREMENTS, say)
    _write_stamp(venv_dir)
    say("argilla-server environment ready")
    _mention_outdated(say)


def _write_stamp(venv_dir: Path) -> None:
    """The last step of a build, atomic: the stamp either matches in full or is absent."""
    tmp = venv_dir / f"{STAMP_FILE}.{os.getpid()}.tmp"
    tmp.write_text(_stamp() + "\n")
    os.replace(tmp, venv_dir / STAMP_FILE)


def _mention_outdated(say: Progress) -> None:
    old = outdated_server_envs()
    if old:
        names = ", ".join(str(path) for path in old)
        say(f"older argilla-server environments (~600 MB each) are no longer used; you may delete: {names}")


def _create_venv(venv_dir: Path) -> None:
    """A fresh venv in place of whatever a failed build left (the lock file stays: it is held)."""
    # The stamp goes first: were this cleanup interrupted, what is left must not look finished.
    (venv_dir / STAMP_FILE).unlink(missing_ok=True)
    for entry in venv_dir.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    created = subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], capture_output=True, text=True)
    if created.returncode != 0:
        raise MissingDependencyError(
            f"creating the virtual environment {venv_dir} failed:\n{(created.stdout + created.stderr)[-2000:]}",
            hint="Debian/Ubuntu: apt-get install python3-venv; then run the command again",
        )


def _pip_install(venv_dir: Path, requirements: tuple[str, ...], say: Progress) -> None:
    command = [str(venv_python(venv_dir)), "-m", "pip", "install", "--progress-bar", "off", *requirements]
    _run_logged(command, venv_dir, say)


def _run_logged(command: list[str], venv_dir: Path, say: Progress) -> None:
    """Run a build step, keep its whole output in the venv's log, show the milestones, fail with the log's tail."""
    log_path = venv_dir / LOG_FILE
    venv_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        collected = 0
        for line in process.stdout:
            log.write(line)
            collected += line.startswith("Collecting")
            if line.startswith("Collecting") and collected % 20 == 1:
                say(f"resolving packages ({collected} so far)")
            elif line.startswith(_SHOWN_PREFIXES):
                say(line.strip()[:100] + ("..." if len(line.strip()) > 100 else ""))
        code = process.wait()
    if code != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise MissingDependencyError(
            f"building the argilla-server environment failed ({' '.join(command[2:5])}... exited {code}):\n{tail}",
            hint=f"read {log_path}, fix the cause (network, package index, compiler) and run the command again",
        )
