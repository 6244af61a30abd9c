"""Decoded vector blocks saved as binary files, so a server start does not parse every vector's JSON again.

Argilla stores each vector as a JSON array (~8 KB of text for 384 dimensions); parsing 100k of them took
~25 s, which the first similarity query after every server start paid. A block (``vectors.py``) is
therefore saved, after a refresh that fetched many rows, as one binary file of its live rows: record ids,
their vector rows' ``updated_at``, the row norms, the matrix and the block's fingerprint (``similarity.py``),
as ``.npy`` arrays one after another (read back at disk speed; a zipped ``.npz`` spent most of its time
checking CRCs). A cold block starts from that file. When the database's fingerprint still equals the
saved one, nothing was written since and the block is ready; otherwise it goes through the usual
reconciliation: rows whose ``updated_at`` differs, or that the file lacks, are fetched and decoded, rows
that are gone are dropped. A stale, partial or unreadable file can cost time but never serve a wrong
vector; deleting the folder is safe.

Files live in ``<ARGILLA_HOME_PATH>/assay-vectors/<dataset id>-<vector settings id>.vectors`` (written to a
temporary name and renamed, so a reader never sees half a file); ``ASSAY_VECTOR_SNAPSHOTS`` names another
folder, or ``0`` turns saving and loading off.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from pathlib import Path
from uuid import UUID

import numpy as np

SAVE_MIN_ROWS = 1000  # fetched rows worth rewriting a block's file for
SAVE_EVERY_S = 60.0  # at most one write per block in this time, so a push with searches is not slowed


@dataclasses.dataclass
class Snapshot:
    """A block's live rows in row order, and the fingerprint of the database's rows they were read under."""

    keys: list[str]
    stamps: list[str]
    matrix: np.ndarray
    norms: np.ndarray
    fingerprint: tuple | None


_log = logging.getLogger(__name__)


def directory() -> Path | None:
    """Where blocks are saved; None: snapshots are off."""
    override = os.environ.get("ASSAY_VECTOR_SNAPSHOTS", "")
    if override == "0":
        return None
    if override:
        return Path(override)
    from argilla_server.settings import settings

    return Path(settings.home_path) / "assay-vectors"


def path_for(cache_key: tuple[UUID, UUID]) -> Path | None:
    folder = directory()
    return None if folder is None else folder / f"{cache_key[0]}-{cache_key[1]}.vectors"


def save(cache_key: tuple[UUID, UUID], snapshot: Snapshot) -> None:
    """Write a block's rows (blocking: run it in a thread); a failure only loses the speed-up."""
    path = path_for(cache_key)
    if path is None:
        return
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    arrays = (
        np.asarray(json.dumps(snapshot.fingerprint)),
        np.asarray(snapshot.keys, dtype="U"),
        np.asarray(snapshot.stamps, dtype="U"),
        snapshot.norms,
        snapshot.matrix,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            for array in arrays:
                np.save(out, array, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as error:
        _log.warning("assay: could not save the vector snapshot %s: %s", path, error)
        tmp.unlink(missing_ok=True)


def load(cache_key: tuple[UUID, UUID], dims: int) -> Snapshot | None:
    """A saved block's rows, or None when there is no usable file (missing, unreadable, other dimensions)."""
    path = path_for(cache_key)
    if path is None or not path.exists():
        return None
    try:  # np.load reads successive arrays of an open file, each with one read
        with open(path, "rb") as saved:
            fingerprint, keys, stamps, norms, matrix = (np.load(saved, allow_pickle=False) for _ in range(5))
        stamp = json.loads(str(fingerprint))
    except (OSError, ValueError, EOFError) as error:
        _log.warning("assay: ignoring the unreadable vector snapshot %s: %s", path, error)
        return None
    rows = len(keys)
    if matrix.shape != (rows, dims) or matrix.dtype not in (np.float32, np.float64):
        return None
    if norms.shape != (rows,) or stamps.shape != (rows,):
        return None
    return Snapshot(keys.tolist(), stamps.tolist(), matrix, norms, tuple(stamp) if stamp else None)


def forget_dataset(dataset_id: UUID) -> None:
    """Remove the files of a deleted dataset's blocks."""
    folder = directory()
    if folder is not None and folder.is_dir():
        for path in folder.glob(f"{dataset_id}-*.vectors"):
            path.unlink(missing_ok=True)
