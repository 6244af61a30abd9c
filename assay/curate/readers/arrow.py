"""Arrow inputs: Parquet files and `datasets.save_to_disk` folders, read batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from assay.curate.readers.chunks import Chunk, FileCtx, assemble
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.formats import InputFile, read_json_file
from assay.curate.readers.quarantine import LINE, empty_error, json_raws
from assay.errors import InputError


def read_parquet(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(f.path)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{f.path} is not a readable parquet file: {exc}") from exc
    if parquet.metadata.num_rows == 0:
        raise empty_error(f)
    yield from _arrow_chunks(parquet.iter_batches(batch_size=cfg.chunk_rows), f, cfg)


def read_hf(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """A `datasets.save_to_disk` folder: Arrow IPC stream files read batch by batch."""
    seen = False
    for chunk in _arrow_chunks(_hf_batches(f.path), f, cfg):
        seen = True
        yield chunk
    if not seen:
        raise empty_error(f)


def _hf_batches(folder: Path) -> Iterator[pa.RecordBatch]:
    state = read_json_file(folder / "state.json")
    names = [d["filename"] for d in state.get("_data_files", [])]
    paths = [folder / n for n in names] if names else sorted(folder.glob("*.arrow"))
    for path in paths:
        with pa.OSFile(str(path), "rb") as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid as exc:
                raise InputError(f"{path} is not an Arrow stream file: {exc}") from exc
            yield from reader


def _arrow_chunks(batches: Iterator[pa.RecordBatch], f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    ctx, first = FileCtx(f, cfg), 1
    for table in _rebatch(batches, cfg.chunk_rows):
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        numbers = pl.Series(LINE, range(first, first + df.height), dtype=pl.Int64)
        first += df.height
        yield assemble(df.insert_column(0, numbers), ctx, json_raws, [])


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Regroup record batches into tables of exactly `size` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch, count = batch.slice(take), count + take
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)
