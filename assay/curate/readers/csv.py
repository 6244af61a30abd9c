"""CSV and TSV, streamed with the `csv` module; every value stays a string.

A record keeps the physical line it starts on, and a line with invalid UTF-8 is quarantined
without breaking the record structure around it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import polars as pl

from assay.curate.readers.chunks import Chunk, FileCtx, assemble
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.formats import InputFile
from assay.curate.readers.jsonl import BOM
from assay.curate.readers.quarantine import LINE, Bad, empty_error, json_raws
from assay.errors import InputError


class CsvFeed:
    """Feeds decoded lines to `csv.reader` while remembering the current record's lines.

    This is how a record gets its physical start line and raw text, and how a line with
    invalid UTF-8 is quarantined without breaking the record structure around it.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._lines = enumerate(fh, 1)
        self.begin()

    def begin(self) -> None:
        self.start: int | None = None
        self.pieces: list[bytes] = []
        self.utf8_error: str | None = None

    def __iter__(self) -> CsvFeed:
        return self

    def __next__(self) -> str:
        number, raw = next(self._lines)
        if number == 1:
            raw = raw.removeprefix(BOM)
        if self.start is None:
            self.start = number
        self.pieces.append(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.utf8_error is None:
                where = "" if number == self.start else f" of line {number}"
                self.utf8_error = f"invalid UTF-8 at byte {exc.start + 1}{where}"
            return raw.decode("utf-8", "replace")

    def raw(self) -> bytes:
        return b"".join(self.pieces).rstrip(b"\r\n")


@dataclass
class _CsvBlock:
    lines: list[int] = field(default_factory=list)
    records: list[list[str]] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records) + len(self.bad)


def read_csv(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """Stream CSV/TSV with the `csv` module; every value stays a string."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long texts are normal here
    delimiter = cfg.csv_delimiter or ("\t" if f.format == "tsv" else ",")
    ctx, seen = FileCtx(f, cfg), False
    with open(f.path, "rb") as fh:
        feed = CsvFeed(fh)
        reader = csv.reader(feed, delimiter=delimiter)
        header = _csv_header(reader, feed, f)
        for block in _csv_blocks(reader, feed, len(header), cfg):
            seen = True
            df = pl.DataFrame(block.records, schema=dict.fromkeys(header, pl.String()), orient="row")
            df = df.insert_column(0, pl.Series(LINE, block.lines, dtype=pl.Int64))
            yield assemble(df, ctx, json_raws, block.bad)
    if not seen:
        raise empty_error(f)


def _csv_header(reader: Any, feed: CsvFeed, f: InputFile) -> list[str]:
    for record in reader:
        if feed.utf8_error:
            raise InputError(
                f"invalid UTF-8 in the header of {f.path} ({feed.utf8_error})",
                hint="re-save the file as UTF-8",
            )
        if record:
            names = [name.strip() or f"column_{i + 1}" for i, name in enumerate(record)]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise InputError(
                    f"duplicate column names in the header of {f.path}: {', '.join(duplicates)}",
                    hint="rename the columns so that each name is unique",
                )
            return names
        feed.begin()
    raise empty_error(f)


def _csv_blocks(reader: Any, feed: CsvFeed, width: int, cfg: ReadConfig) -> Iterator[_CsvBlock]:
    block = _CsvBlock()
    while True:
        feed.begin()
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            block.bad.append(Bad(feed.start or 0, f"invalid CSV: {exc}", feed.raw()))
            record = None
        if record is not None and _csv_keep(record, feed, width, block):
            block.lines.append(feed.start or 0)
            block.records.append(record)
        if len(block) >= cfg.chunk_rows:
            yield block
            block = _CsvBlock()
    if len(block):
        yield block


def _csv_keep(record: list[str], feed: CsvFeed, width: int, block: _CsvBlock) -> bool:
    """True for a usable record; a bad one is added to the block's quarantine, a blank one skipped."""
    if not record or (width > 1 and len(record) == 1 and not record[0].strip()):
        return False
    error = feed.utf8_error
    if error is None and len(record) != width:
        error = f"expected {width} fields, found {len(record)}"
    if error:
        block.bad.append(Bad(feed.start or 0, error, feed.raw()))
        return False
    return True
