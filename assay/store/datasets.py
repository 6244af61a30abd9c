"""Immutable, content-addressed dataset versions (DESIGN §3).

A version is `data.parquet` (kept rows), `rejects.parquet` (removed rows with `step` and
`reason`), `quarantine.parquet` (input rows that could not be parsed) and `manifest.json`.
Its id hashes the rows and the manifest essentials, so the same input and config give the
same id and writing it again is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from polars.io.plugins import register_io_source

from assay.errors import ConfigError, os_errno
from assay.schema import QUARANTINE_SCHEMA, REJECT_SCHEMA
from assay.store.atomic import staging_dir
from assay.store.blocks import Blocks, FrameBlocks, as_blocks
from assay.store.digest import frame_digest, json_digest
from assay.store.manifest import library_versions, now_iso
from assay.store.versions import Version, VersionStore, commit

KINDS = ("raw", "curated", "approved", "mix")
DATA, REJECTS, QUARANTINE = "data.parquet", "rejects.parquet", "quarantine.parquet"


@dataclass(frozen=True)
class DatasetVersion(Version):
    """A published dataset version: its rows, rejects and quarantine as lazy frames."""

    def data(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path / DATA)

    def rejects(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path / REJECTS)

    def quarantine(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path / QUARANTINE)


@dataclass(frozen=True)
class WriteResult:
    version: DatasetVersion
    created: bool


def _or_empty(frame: pl.DataFrame | Blocks | None, schema: dict) -> Blocks:
    if frame is None:
        return FrameBlocks(pl.DataFrame(schema=schema))
    blocks = as_blocks(frame)
    missing = [c for c in schema if c not in blocks.schema]
    if missing:
        raise ValueError(f"frame lacks required columns {missing}")
    return blocks


# Row groups of about this many bytes: Polars compresses them in parallel and holds only a few in
# memory (pyarrow's writer compressed one block after another on one core: ~2x slower on 2 cores).
# Polars buffers a whole row group before writing it, so its size in rows is set from the bytes per row
# of at least this many rows: a first block that is empty or tiny (a step's rejects in a block with
# none) made the 10M-row run's rejects one 1 GB row group, and the write's peak 5.77 GB instead of 2.25.
_ROW_GROUP_BYTES = 16 * 2**20
_SAMPLE_ROWS = 1024


def _write_parquet(blocks: Blocks, path: Path) -> None:
    """zstd Parquet through Polars' streaming sink, which pulls one block at a time, so a version larger
    than memory is written with bounded memory. I/O errors surface as OSError (Polars reports them
    as ComputeError with the OS error code in the message)."""
    frames = blocks.frames()
    head = _first_rows(frames, _SAMPLE_ROWS) or [pl.DataFrame(schema=blocks.schema)]
    rows = sum(f.height for f in head)
    row_bytes = sum(f.estimated_size() for f in head) / rows if rows else 1.0
    rows_per_group = max(1, int(_ROW_GROUP_BYTES / max(row_bytes, 1.0)))

    def source(with_columns, predicate, n_rows, batch_size) -> Iterator[pl.DataFrame]:
        yield from head
        yield from frames

    lazy = register_io_source(source, schema=head[0].schema)
    try:
        lazy.sink_parquet(path, compression="zstd", compression_level=1, row_group_size=rows_per_group)
    except pl.exceptions.PolarsError as exc:
        if (code := os_errno(exc)) is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from exc


def _first_rows(frames: Iterator[pl.DataFrame], rows: int) -> list[pl.DataFrame]:
    """Blocks taken from `frames` until they hold `rows` rows or `frames` ends."""
    head: list[pl.DataFrame] = []
    taken = 0
    while taken < rows and (frame := next(frames, None)) is not None:
        head.append(frame)
        taken += frame.height
    return head


def _write_parquets(parts: tuple[tuple[Blocks, str], ...], folder: Path) -> None:
    for blocks, file in parts:
        _write_parquet(blocks, folder / file)


def version_id(kind: str, parents: list[str], config_hash: str, digests: dict[str, str]) -> str:
    """ds- + 12 hex of a hash over the rows' digests and the manifest essentials."""
    return "ds-" + json_digest({"kind": kind, "parents": sorted(parents), "config": config_hash, **digests})[:12]


class DatasetStore(VersionStore):
    """Write and read dataset versions of one workspace."""

    family = "dataset"
    version_class = DatasetVersion

    def write(
        self,
        data: pl.DataFrame | Blocks,
        *,
        kind: str,
        config: dict,
        rejects: pl.DataFrame | Blocks | None = None,
        quarantine: pl.DataFrame | Blocks | None = None,
        parents: list[str] | None = None,
        counts: dict | None = None,
        name: str | None = None,
        seed: int | None = None,
        extra: dict | None = None,
        recipe_key: str | None = None,
    ) -> WriteResult:
        """Publish a dataset version atomically; an identical existing version is returned as is.

        Frames may be given as blocks (`assay.store.blocks`): a version larger than memory is
        digested and written a block at a time.
        """
        if kind not in KINDS:
            raise ConfigError(f"unknown dataset kind `{kind}`", hint=f"use one of {', '.join(KINDS)}")
        parents = list(parents or [])
        data, rejects, quarantine = as_blocks(data), _or_empty(rejects, REJECT_SCHEMA), _or_empty(quarantine, QUARANTINE_SCHEMA)
        config_hash = json_digest(config)
        with staging_dir(self.layout.tmp) as staged:
            # The Parquet files are written on a second thread while the digests are computed: both
            # spend their time in native code that releases the GIL, and neither needs the other.
            with ThreadPoolExecutor(1, thread_name_prefix="assay-write") as pool:
                written = pool.submit(_write_parquets, ((data, DATA), (rejects, REJECTS), (quarantine, QUARANTINE)), staged)
                try:
                    digests = {"data": frame_digest(data), "rejects": frame_digest(rejects), "quarantine": frame_digest(quarantine)}
                finally:
                    written.result()
            vid = version_id(kind, parents, config_hash, digests)
            manifest = {
                "id": vid, "family": "dataset", "kind": kind, "name": name, "parents": parents,
                "created_at": now_iso(), "config": config, "config_hash": config_hash, "seed": seed,
                "rows": data.height, "counts": counts or {"kept": data.height, "rejected": rejects.height,
                                                          "quarantined": quarantine.height},
                "schema": {c: str(t) for c, t in data.schema.items()}, "digests": digests,
                "library_versions": library_versions(), **(extra or {}),
            }
            entry, created = commit(self.layout, self.catalog, staged, manifest, recipe_key=recipe_key)
        return WriteResult(self._version(entry), created)

    def get(self, ref: str) -> DatasetVersion:
        return self._version(self.catalog.resolve(ref, family=self.family))  # type: ignore[return-value]

    def by_recipe(self, key: str) -> DatasetVersion | None:
        vid = self.catalog.recipe(key)
        entry = self.catalog.get(vid) if vid else None
        return self._version(entry) if entry else None


