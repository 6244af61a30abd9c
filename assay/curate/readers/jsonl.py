"""JSON Lines (also gzip): a fast polars pass per block, per-line Python only where it fails."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import polars as pl

from assay.curate.readers.chunks import Chunk, FileCtx, assemble
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.formats import InputFile
from assay.curate.readers.quarantine import LINE, Bad, decode_raw, empty_error
from assay.curate.readers.rules import flag_non_text, json_kind

BOM = b"\xef\xbb\xbf"


def read_jsonl(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    ctx, seen = FileCtx(f, cfg), False
    with open_bytes(f.path) as fh:
        for block in _line_blocks(fh, cfg):
            seen = True
            yield json_block_chunk(block, ctx)
    if not seen:
        raise empty_error(f)


def open_bytes(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _line_blocks(fh: IO[bytes], cfg: ReadConfig) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines with their 1-based physical numbers, in blocks of bounded size."""
    block: list[tuple[int, bytes]] = []
    size = 0
    for number, line in enumerate(fh, 1):
        if number == 1:
            line = line.removeprefix(BOM)
        if not line or line.isspace():
            continue
        line = line.rstrip(b"\r\n")
        block.append((number, line))
        size += len(line)
        if len(block) >= cfg.chunk_rows or size >= cfg.chunk_bytes:
            yield block
            block, size = [], 0
    if block:
        yield block


def json_block_chunk(block: list[tuple[int, bytes]], ctx: FileCtx) -> Chunk:
    """Parse a block of JSON lines: a fast polars pass, per-line Python only where it fails."""
    lines, bad = _split_invalid_utf8(block)
    df, lines, objects = _parse_json_lines(lines, bad)
    if df.height:
        df = flag_non_text(df, ctx.mapping_for(df.columns), objects, [raw for _, raw in lines])

    def raw_of(rejected: pl.DataFrame) -> list[str]:
        wanted = rejected.get_column(LINE).to_list()
        if not wanted:
            return []
        keep = set(wanted)
        raws = {line: raw for line, raw in lines if line in keep}
        return [decode_raw(raws[line]) for line in wanted]

    return assemble(df, ctx, raw_of, bad)


def _split_invalid_utf8(block: list[tuple[int, bytes]]) -> tuple[list[tuple[int, bytes]], list[Bad]]:
    joined = b"\n".join(raw for _, raw in block)
    if joined.isascii():
        return block, []
    try:
        joined.decode("utf-8")
        return block, []
    except UnicodeDecodeError:
        pass
    good, bad = [], []
    for line, raw in block:
        try:
            raw.decode("utf-8")
            good.append((line, raw))
        except UnicodeDecodeError as exc:
            bad.append(Bad(line, f"invalid UTF-8 at byte {exc.start + 1}", raw))
    return good, bad


def _parse_json_lines(
    lines: list[tuple[int, bytes]], bad: list[Bad]
) -> tuple[pl.DataFrame, list[tuple[int, bytes]], list[dict[str, Any]] | None]:
    """Frame of the usable lines, those lines, and the parsed objects when Python parsed them."""
    df = _ndjson_frame(lines)
    if df is not None:
        return df, lines, None
    kept, objects = [], []
    for line, raw in lines:
        obj = _loads_object(line, raw, bad)
        if obj is not None:
            kept.append((line, raw))
            objects.append(obj)
    df = _ndjson_frame(kept)
    if df is None:
        df = _frame_from_objects(objects, [n for n, _ in kept])
    return df, kept, objects


def _ndjson_frame(lines: list[tuple[int, bytes]]) -> pl.DataFrame | None:
    """polars' NDJSON parser on the block, or None when it refuses or miscounts rows."""
    numbers = pl.Series(LINE, [n for n, _ in lines], dtype=pl.Int64)
    if not lines:
        return pl.DataFrame([numbers])
    try:
        df = pl.read_ndjson(b"\n".join(raw for _, raw in lines), infer_schema_length=None)
    except (Exception, pl.exceptions.PanicException):  # any refusal: the per-line path decides
        return None
    if df.height != len(lines):
        return None
    return df.insert_column(0, numbers) if LINE not in df.columns else None


def _loads_object(line: int, raw: bytes, bad: list[Bad]) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw, strict=False)
    except json.JSONDecodeError as exc:
        bad.append(Bad(line, f"invalid JSON: {exc.msg} at column {exc.colno}", raw))
        return None
    except RecursionError:
        bad.append(Bad(line, "invalid JSON: nested too deeply", raw))
        return None
    if not isinstance(obj, dict):
        bad.append(Bad(line, f"expected a JSON object, found {json_kind(obj)}", raw))
        return None
    return obj


def _frame_from_objects(objects: list[dict[str, Any]], numbers: list[int]) -> pl.DataFrame:
    """Last resort when polars cannot type a block: columns it cannot type become JSON text."""
    names = list(dict.fromkeys(key for obj in objects for key in obj))
    columns = [pl.Series(LINE, numbers, dtype=pl.Int64)]
    columns += [_loose_series(name, [obj.get(name) for obj in objects]) for name in names if name != LINE]
    return pl.DataFrame(columns)


def _loose_series(name: str, values: list[Any]) -> pl.Series:
    try:
        series = pl.Series(name, values, strict=False)
        if series.dtype != pl.Object:
            return series
    except Exception:  # polars cannot build it: fall through to JSON text
        pass
    text = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return pl.Series(name, text, dtype=pl.String)
