"""Atomic directory writes: build in a staging folder, fsync, then rename into place.

A process killed at any point leaves either nothing under the final name or the whole
directory; staging leftovers carry a recognisable prefix so `assay doctor` can remove them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".staging-"


def fsync_path(path: Path) -> None:
    """Flush a file or directory entry to disk (directories need it for renames to survive)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file below root, then every directory, bottom-up."""
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def new_staging_dir(tmp_root: Path, what: str) -> Path:
    """A fresh folder with the staging prefix (so `assay doctor` removes it if its run is killed)."""
    tmp_root.mkdir(parents=True, exist_ok=True)
    path = tmp_root / f"{STAGING_PREFIX}{os.getpid()}-{what}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


@contextlib.contextmanager
def staging_dir(tmp_root: Path) -> Iterator[Path]:
    """A fresh staging directory that is removed if the block raises."""
    tmp_root.mkdir(parents=True, exist_ok=True)
    path = tmp_root / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def publish_dir(staged: Path, final: Path) -> bool:
    """Rename a complete staged directory to its final name.

    Returns False (and discards the staged copy) when the final name already exists,
    which for content-addressed versions means an identical version won the race.
    """
    fsync_tree(staged)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(staged, ignore_errors=True)
        return False
    fsync_path(final.parent)
    return True


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace a single file atomically (write a sibling temp file, fsync, rename).

    `mode` (e.g. 0o600 for secrets) applies from the first byte, so the content is never readable
    by others, not even while it is being written.
    """
    with atomic_path(path, mode=mode) as tmp:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = os.open(tmp, flags, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)


@contextlib.contextmanager
def atomic_path(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A temporary sibling of `path` to write in any way (e.g. `frame.write_parquet(tmp)`); on success it
    is fsynced and renamed onto `path`, on failure removed. Its name carries our pid for `assay doctor`."""
    path = Path(path)
    tmp = path.with_name(f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Streamed sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
