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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace a single file atomically (write a sibling temp file, fsync, rename)."""
    tmp = path.with_name(f"{STAGING_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Streamed sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
