"""Exporting a version's rows to JSONL or Parquet, or the whole version, at a local path or an
object-store URL.

Rows go from the version's Parquet file to the output a slice at a time (a Parquet export is a copy
of the file), so a version larger than memory exports. A local file is written beside its target and
renamed into place; for a URL, the file is written in the staging folder and uploaded in one put,
which object stores make visible whole or not at all. A whole version is its
Parquet files, then its manifest last, so a reader that finds the manifest finds every file it
lists, byte for byte (the manifest's hashes check them).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from assay.errors import ConfigError, StorageError, storage_error
from assay.store.atomic import atomic_path
from assay.store.blocks import parquet_slices
from assay.store.datasets import DATA, QUARANTINE, REJECTS, DatasetVersion
from assay.store.urls import filesystem, is_url, store_errors
from assay.store.versions import MANIFEST

FORMATS = ("jsonl", "parquet")
PARTS = {"data": DATA, "rejects": REJECTS, "quarantine": QUARANTINE}
_BATCH_ROWS = 32_768  # rows converted to JSON at a time


def export_version(
    version: DatasetVersion, out: str | Path, *, fmt: str = "jsonl", part: str = "data", staging: Path | None = None
) -> int:
    """Write one part of a version to `out` (a path or a URL); returns the number of rows written.

    A URL's file is written under `staging` (the system's temporary folder when None) first.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format `{fmt}`", hint=f"use one of {', '.join(FORMATS)}")
    if part not in PARTS:
        raise ConfigError(f"unknown part `{part}`", hint=f"use one of {', '.join(PARTS)}")
    source = version.path / PARTS[part]
    rows = pq.ParquetFile(source).metadata.num_rows
    if not is_url(out):
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            _write(source, tmp, fmt)
        return rows
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=staging))
    try:
        local = folder / f"{part}.{fmt}"
        _write(source, local, fmt)
        _upload(local, str(out))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def export_all(version: DatasetVersion, out: str | Path, *, staging: Path | None = None) -> dict[str, int]:
    """Write the whole version (its Parquet files, then its manifest) into the folder or URL prefix
    `out`; returns the rows written per part."""
    rows = {part: export_version(version, _join(out, file), fmt="parquet", part=part, staging=staging)
            for part, file in PARTS.items()}
    target = _join(out, MANIFEST)
    if is_url(target):
        _upload(version.path / MANIFEST, str(target))
    else:
        with atomic_path(Path(target)) as tmp:
            shutil.copyfile(version.path / MANIFEST, tmp)
    return rows


def _join(out: str | Path, name: str) -> str | Path:
    return f"{str(out).rstrip('/')}/{name}" if is_url(out) else Path(out) / name


def _write(source: Path, path: Path, fmt: str) -> None:
    """Write `source` to `path` as `fmt` in bounded memory: Parquet is a copy of the file (its rows,
    schema and row groups as stored), JSONL one JSON object per line as Polars writes them, a slice at a
    time (measured 237 MB peak for a 1M-row, 650 MB part, against 797 MB for the part at once)."""
    try:
        if fmt == "parquet":
            shutil.copyfile(source, path)
            return
        with open(path, "wb") as fh:
            for part in parquet_slices(source, _BATCH_ROWS):
                part.write_ndjson(fh)
    except OSError as exc:
        raise (storage_error(exc) or exc) from exc


def _upload(local: Path, url: str) -> None:
    fs, path = filesystem(url)
    with store_errors(url, "write", StorageError):
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put_file(str(local), path)
