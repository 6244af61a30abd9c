"""Blocks of rows between the engine's passes: held in memory up to a budget, spilled to disk beyond it.

Spilled blocks are uncompressed Arrow IPC files (written and read at disk speed) in one staging
folder per run, removed when the run ends or fails; a killed run's folder carries the staging
prefix, so `assay doctor` removes it, and nothing of it is ever visible as a version. A disk that
fills while spilling is a clear error naming the folder.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from assay.errors import StorageError, disk_full
from assay.schema import content_columns, content_text
from assay.store.blocks import align, union_schema


class Spill:
    """One run's spill folder and the memory budget its parts share.

    Blocks held within the budget are kept as Arrow tables whose buffers are their own (`_hold`), not
    as frames: a frame can pin buffers far larger than its rows (string views into the buffers a step
    read from, slices of a larger frame) and Polars does not say how large, while a table that owns its
    buffers holds exactly what they count, so the budget is a real bound. `unbounded` keeps frames as
    they are (small in-memory runs).
    """

    def __init__(self, root: Path, budget_bytes: int, *, unbounded: bool = False) -> None:
        self.root = root
        self.budget = budget_bytes
        self.unbounded = unbounded
        self.held = 0
        self._files = 0

    def parts(self) -> Parts:
        return Parts(self)

    @property
    def scratch(self) -> Path | None:
        """Where steps may put large intermediate files (None for an in-memory run)."""
        return None if self.unbounded else self.root

    def keep(self, df: pl.DataFrame) -> Entry:
        """Hold `df` in memory while the budget allows, else write it to a file."""
        if self.unbounded:
            return Entry(df.height, df.schema, frame=df)
        if self.held + df.estimated_size() <= self.budget:
            data, size = _hold(df)
            self.held += size
            return Entry(df.height, df.schema, data=data, size=size)
        self._files += 1
        path = self.root / f"part-{self._files:06d}.arrow"
        try:
            df.write_ipc(path, compression="uncompressed")
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise spill_error(exc, self.root) from exc
        return Entry(df.height, df.schema, path=path)

    def release(self, entry: Entry) -> None:
        self.held -= entry.size
        entry.free()
        if entry.path is not None:
            entry.path.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# A block held in memory is an Arrow table: converting it costs ~0.01 s per 100k rows of ~0.75 KB, and
# reading it back is zero-copy but for the strings. Its strings come out of `to_arrow` in fresh buffers
# holding its rows only; other columns may be views into a larger frame's buffers (a slice of a corpus
# step's decisions), which the table would pin unseen, so those are copied (a few bytes a row). Every
# buffer is then the block's own, and `get_total_buffer_size` is what it holds.
def _hold(df: pl.DataFrame) -> tuple[pa.Table | bytes, int]:
    """What to keep in memory for a block, and the bytes it holds."""
    try:
        table = df.to_arrow()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a Polars-only dtype (Int128): Polars' own IPC
        buffer = io.BytesIO()
        df.write_ipc(buffer, compression="uncompressed")
        data = buffer.getvalue()
        return data, len(data)
    table = pa.table([_own(c) for c in table.columns], schema=table.schema)
    return table, table.get_total_buffer_size()


def _own(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type) or not column.num_chunks:
        return column
    return pa.chunked_array([pa.concat_arrays(column.chunks)], type=column.type)  # always a copy


def _from_held(data: pa.Table | bytes, columns: list[str] | None) -> pl.DataFrame:
    if isinstance(data, bytes):
        return pl.read_ipc(io.BytesIO(data), columns=columns)
    frame = pl.from_arrow(data if columns is None else data.select(columns), rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def spill_error(exc: OSError, root: Path) -> StorageError:
    """The error for a write to the run's spill folder that failed (a full disk named as such)."""
    free = shutil.disk_usage(root.parent).free if root.parent.exists() else 0
    if disk_full(exc):
        return StorageError(
            f"the disk filled while spilling intermediate rows to {root} ({free / 2**30:.1f} GiB free now); "
            "the run was stopped and its spill files removed, no version was written",
            hint="free disk space, or raise [curate] memory_mb so less is spilled",
        )
    return StorageError(f"cannot spill intermediate rows to {root}: {exc}", hint="check the workspace's disk and permissions")


@dataclass
class Entry:
    height: int
    schema: pl.Schema
    frame: pl.DataFrame | None = None
    data: pa.Table | bytes | None = None
    path: Path | None = None
    size: int = 0

    def free(self) -> None:
        self.frame, self.data, self.size = None, None, 0

    def read(self, columns: Sequence[str] | None = None) -> pl.DataFrame:
        cols = None if columns is None else [c for c in columns if c in self.schema]
        if cols == []:
            return pl.DataFrame()
        if self.frame is not None:
            return self.frame if cols is None else self.frame.select(cols)
        if self.data is not None:
            return _from_held(self.data, cols)
        assert self.path is not None
        return pl.read_ipc(self.path, columns=cols)



class Parts:
    """An ordered sequence of blocks (the `Blocks` protocol), each in memory or in a spill file."""

    def __init__(self, spill: Spill, entries: list[Entry] | None = None) -> None:
        self.spill = spill
        self.entries: list[Entry] = entries or []
        self._schema: pl.Schema | None = None

    def append(self, df: pl.DataFrame) -> None:
        self.entries.append(self.spill.keep(df))
        self._schema = None

    @staticmethod
    def chain(spill: Spill, parts: Sequence[Parts]) -> Parts:
        return Parts(spill, [e for p in parts for e in p.entries])

    @property
    def schema(self) -> pl.Schema:
        """The union of the blocks' schemas, unless set (then every block is cast to it)."""
        if self._schema is None:
            self._schema = union_schema([e.schema for e in self.entries])
        return self._schema

    @schema.setter
    def schema(self, schema: pl.Schema) -> None:
        self._schema = schema

    @property
    def height(self) -> int:
        return sum(e.height for e in self.entries)

    def heights(self) -> list[int]:
        return [e.height for e in self.entries]

    def frames(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        """Each block with the union schema (or those columns of it); one empty block when there are none."""
        schema = self.schema if columns is None else pl.Schema({c: self.schema[c] for c in columns})
        if not self.entries:
            yield pl.DataFrame(schema=schema)
        for entry in self.entries:
            yield align(entry.read(list(schema.names())), schema, entry.height)

    def drain(self) -> Iterator[pl.DataFrame]:
        """Each block with the parts' schema, released from memory or disk once read (a one-way pass)."""
        schema = self.schema
        for entry in list(self.entries):
            block = align(entry.read(), schema, entry.height)
            self.spill.release(entry)
            yield block
        self.entries = []

    def texts_of(self, rows: np.ndarray) -> Iterator[pl.Series]:
        """The content text of rows at these positions (sorted, unique), block by block, reading only
        the blocks holding them."""
        columns = content_columns(self.schema)
        bounds = np.cumsum([0, *self.heights()])
        for k, entry in enumerate(self.entries):
            lo, hi = np.searchsorted(rows, [bounds[k], bounds[k + 1]])
            if hi > lo:
                block = align(entry.read(columns), pl.Schema({c: self.schema[c] for c in columns}), entry.height)
                yield block.select(content_text(columns)).to_series().gather(rows[lo:hi] - bounds[k])

    def release(self) -> None:
        """Free the blocks' memory and files (entries shared with a chain are freed with it)."""
        for entry in self.entries:
            self.spill.release(entry)
        self.entries = []
        self._schema = None
