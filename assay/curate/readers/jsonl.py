"""JSON Lines (also gzip): a fast polars pass per block, per-line Python only where it fails.

Lines are found with whole-buffer operations (large reads, newlines and offsets in NumPy), not a Python
loop per line: a block is one bytes buffer of its lines joined by newlines plus their numbers and offsets
(`Lines`), which is what polars parses. Per-line Python runs only for lines that need it (blank or
`\\r`-terminated lines, invalid UTF-8, lines polars refuses, suspected non-text values).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
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


_READ_BYTES = 8 * 2**20  # lines are read about this many bytes at a time, then cut into blocks
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True  # bytes.isspace()


class Lines(Sequence[bytes]):
    """Non-blank lines without their line ends: one buffer of them joined by newlines (maybe with a
    trailing newline), their 1-based physical numbers, and where each starts and ends in the buffer."""

    def __init__(self, data: bytes, numbers: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data, self.numbers, self.starts, self.ends = data, numbers, starts, ends

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return self.data[self.starts[i] : self.ends[i]]

    def pairs(self) -> list[tuple[int, bytes]]:
        return list(zip(self.numbers.tolist(), self, strict=True))

    def size(self, a: int, b: int) -> int:
        """Bytes of lines a..b-1 (without line ends)."""
        return int((self.ends[a:b] - self.starts[a:b]).sum())

    def view(self, a: int, b: int) -> memoryview:
        """Lines a..b-1 as they lie in the buffer (joined by single newlines), without a copy."""
        return memoryview(self.data)[int(self.starts[a]) : int(self.ends[b - 1])]

    @staticmethod
    def of_pairs(block: Sequence[tuple[int, bytes]]) -> Lines:
        lengths = np.fromiter((len(raw) for _, raw in block), np.int64, len(block))
        starts = np.cumsum(lengths + 1) - (lengths + 1)
        numbers = np.fromiter((n for n, _ in block), np.int64, len(block))
        return Lines(b"\n".join(raw for _, raw in block), numbers, starts, starts + lengths)

    @staticmethod
    def join(parts: list[tuple[Lines, int, int]]) -> Lines:
        """Lines a..b-1 of each part, in order, as one block."""
        parts = [(p, a, b) for p, a, b in parts if b > a]
        if not parts:
            return Lines(b"", np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if len(parts) == 1 and parts[0][1] == 0 and parts[0][2] == len(parts[0][0]):
            return parts[0][0]
        data = b"\n".join(p.view(a, b) for p, a, b in parts)
        numbers, starts, ends, shift = [], [], [], 0
        for p, a, b in parts:
            base = int(p.starts[a])
            starts.append(p.starts[a:b] - base + shift)
            ends.append(p.ends[a:b] - base + shift)
            numbers.append(p.numbers[a:b])
            shift += int(p.ends[b - 1]) - base + 1
        return Lines(data, np.concatenate(numbers), np.concatenate(starts), np.concatenate(ends))


def _pieces(fh: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes, about `_READ_BYTES` at a time, cut after a line end (the last piece maybe not):
    whole-buffer reads, not a bytes object per line."""
    rest = b""
    while block := fh.read(_READ_BYTES):
        cut = block.rfind(b"\n") + 1
        if not cut:
            rest += block
            continue
        yield block if not rest and cut == len(block) else b"".join((rest, memoryview(block)[:cut]))
        rest = block[cut:]
    if rest:
        yield rest


def _read_lines(data: bytes, first: int) -> tuple[Lines, int]:
    """The non-blank lines of `data` (whole lines, numbered from `first`), each without its trailing \\r
    and \\n (as `line.rstrip(b"\\r\\n")`), and how many physical lines `data` holds."""
    if not data:  # a file holding only a byte order mark
        return Lines.of_pairs([]), 0
    arr = np.frombuffer(data, np.uint8)
    stops = np.flatnonzero(arr == 10) + 1  # each line runs up to and including its "\n"
    if not len(stops) or stops[-1] != len(data):
        stops = np.append(stops, len(data))
    starts = np.concatenate([[0], stops[:-1]])
    ends = stops.copy()
    while True:  # strip line ends: one round for "\n", more only for "\r\n" and the like
        last = arr[np.maximum(ends - 1, 0)]
        strip = (ends > starts) & ((last == 10) | (last == 13))
        if not strip.any():
            break
        ends[strip] -= 1
    numbers = np.arange(first, first + len(stops), dtype=np.int64)
    # A blank line (empty or only whitespace) starts with whitespace or is empty; check only those.
    maybe = np.flatnonzero((ends == starts) | _WHITESPACE[arr[np.minimum(starts, len(arr) - 1)]])
    blank = [k for k in maybe.tolist() if not data[starts[k] : ends[k]].strip(b" \t\n\r\x0b\x0c")]
    clean = not blank and bool((ends >= stops - 1).all())  # lines end with one "\n" (the last maybe none)
    if clean:
        return Lines(data, numbers, starts, ends), len(stops)
    keep = np.ones(len(stops), bool)
    keep[blank] = False
    kept = np.flatnonzero(keep)
    pieces = [data[starts[k] : ends[k]] for k in kept.tolist()]
    return Lines.of_pairs(list(zip(numbers[kept].tolist(), pieces, strict=True))), len(stops)


def _line_blocks(fh: IO[bytes], cfg: ReadConfig) -> Iterator[Lines]:
    """Non-blank lines with their 1-based physical numbers, in blocks of bounded size: a block ends at
    the line that brings it to `chunk_rows` lines or `chunk_bytes` bytes (line ends not counted)."""
    pending: list[tuple[Lines, int, int]] = []
    rows = size = 0
    first = 1
    for data in _pieces(fh):
        lines, physical = _read_lines(data.removeprefix(BOM) if first == 1 else data, first)
        first += physical
        cum = np.concatenate([[0], np.cumsum(lines.ends - lines.starts)])
        a = 0
        while a < len(lines):
            by_rows = a + cfg.chunk_rows - rows
            by_bytes = int(np.searchsorted(cum, cfg.chunk_bytes - size + cum[a], side="left"))
            b = min(by_rows, max(by_bytes, a + 1))
            if b > len(lines):
                pending.append((lines, a, len(lines)))
                rows, size = rows + len(lines) - a, size + int(cum[-1] - cum[a])
                break
            pending.append((lines, a, b))
            yield Lines.join(pending)
            pending, rows, size, a = [], 0, 0, b
    if pending:
        yield Lines.join(pending)


def json_block_chunk(block: Sequence[tuple[int, bytes]] | Lines, ctx: FileCtx) -> Chunk:
    """Parse a block of JSON lines: a fast polars pass, per-line Python only where it fails."""
    lines = block if isinstance(block, Lines) else Lines.of_pairs(block)
    fast = _whole_block(lines, ctx)
    if fast is not None:
        return fast
    return _line_by_line(lines.pairs(), ctx)


def _whole_block(lines: Lines, ctx: FileCtx) -> Chunk | None:
    """The block parsed by polars in one go, when it is valid UTF-8 and polars takes every line."""
    if not len(lines) or not _valid_utf8(lines.data):
        return None
    df = _ndjson_frame(lines)
    if df is None:
        return _line_by_line(lines.pairs(), ctx, whole_refused=True)
    df = flag_non_text(df, ctx.mapping_for(df.columns), None, lines)

    def raw_of(rejected: pl.DataFrame) -> list[str]:
        wanted = rejected.get_column(LINE).to_numpy()
        return [decode_raw(lines[int(k)]) for k in np.searchsorted(lines.numbers, wanted)]

    return assemble(df, ctx, raw_of, [])


def _valid_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _line_by_line(block: list[tuple[int, bytes]], ctx: FileCtx, *, whole_refused: bool = False) -> Chunk:
    lines, bad = _split_invalid_utf8(block)
    df, lines, objects = _parse_json_lines(lines, bad, whole_refused=whole_refused)
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
    lines: list[tuple[int, bytes]], bad: list[Bad], *, whole_refused: bool = False
) -> tuple[pl.DataFrame, list[tuple[int, bytes]], list[dict[str, Any]] | None]:
    """Frame of the usable lines, those lines, and the parsed objects when Python parsed them.

    `whole_refused`: polars already refused these lines as one block (skip trying it again)."""
    df = None if whole_refused else _ndjson_frame(lines)
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


def _ndjson_frame(lines: list[tuple[int, bytes]] | Lines) -> pl.DataFrame | None:
    """polars' NDJSON parser on the block, or None when it refuses or miscounts rows."""
    if isinstance(lines, Lines):
        numbers, data = pl.Series(LINE, lines.numbers, dtype=pl.Int64), lines.data
    else:
        numbers = pl.Series(LINE, [n for n, _ in lines], dtype=pl.Int64)
        data = b"\n".join(raw for _, raw in lines)
    if not len(lines):
        return pl.DataFrame([numbers])
    try:
        df = pl.read_ndjson(data, infer_schema_length=None)
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
