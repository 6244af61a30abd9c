"""The JSON Lines reader finds lines and blocks with whole-buffer operations; they must be exactly the
lines and blocks of the plain per-line loop it replaced, whatever the line ends, blank lines, byte order
mark, read size and block limits."""

from __future__ import annotations

import io
import json

import pytest

from assay.curate.readers import ReadConfig, expand_inputs, jsonl, read_chunks
from assay.curate.readers.jsonl import BOM, Lines, json_block_chunk


def _reference_blocks(data: bytes, chunk_rows: int, chunk_bytes: int) -> list[list[tuple[int, bytes]]]:
    """The per-line loop: non-blank lines without \\r\\n, numbered from 1, cut by rows or bytes."""
    blocks, block, size = [], [], 0
    for number, line in enumerate(io.BytesIO(data), 1):
        if number == 1:
            line = line.removeprefix(BOM)
        if not line or line.isspace():
            continue
        line = line.rstrip(b"\r\n")
        block.append((number, line))
        size += len(line)
        if len(block) >= chunk_rows or size >= chunk_bytes:
            blocks.append(block)
            block, size = [], 0
    return blocks + ([block] if block else [])


ROWS = [json.dumps({"text": f"row {k} " + "é" * (k % 3) + "x" * (k * 7 % 50)}).encode() for k in range(60)]
FILES = {
    "plain": b"\n".join(ROWS) + b"\n",
    "no final newline": b"\n".join(ROWS),
    "crlf and bom": BOM + b"\r\n".join(ROWS) + b"\r\n",
    "blank lines": b"\n\n  \t\n".join(ROWS[:20]) + b"\n \n" + b"\n".join(ROWS[20:]) + b"\n\n",
    "cr runs and lone cr": b"\n".join(r + b"\r\r" for r in ROWS[:30]) + b"\nx\ry\n" + b"\n".join(ROWS[30:]),
    "bom line then rows": BOM + b"\n" + b"\n".join(ROWS),
    "only blanks": b"\n  \n\r\n",
    "only a bom": BOM,
    "empty": b"",
}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize(("read_bytes", "chunk_rows", "chunk_bytes"), [(1 << 20, 100_000, 1 << 26), (64, 7, 1 << 26), (100, 1000, 300), (1, 3, 1)])
def test_line_blocks_are_those_of_the_per_line_loop(monkeypatch, name, read_bytes, chunk_rows, chunk_bytes):
    monkeypatch.setattr(jsonl, "_READ_BYTES", read_bytes)
    data = FILES[name]
    cfg = ReadConfig(chunk_rows=chunk_rows, chunk_bytes=chunk_bytes)
    got = [block.pairs() for block in jsonl._line_blocks(io.BytesIO(data), cfg)]
    assert got == _reference_blocks(data, chunk_rows, chunk_bytes)


def test_a_block_parses_the_same_as_lines_or_as_pairs(tmp_path, monkeypatch):
    """Both block shapes (the reader's Lines, a list of (line, bytes)) give the same chunk, bad lines included."""
    monkeypatch.setattr(jsonl, "_READ_BYTES", 128)
    rows = [*ROWS[:10], b'{"text": "bad \xff utf8"}', b'{"text": broken', b"[1, 2]", b'{"text": {"a": 1}}', *ROWS[10:20]]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\r\n".join(rows) + b"\n\n")
    chunks = list(read_chunks(expand_inputs([str(path)])[0], ReadConfig(chunk_rows=5)))
    assert sum(c.rows.height for c in chunks) == 20 and sum(c.quarantine.height for c in chunks) == 4
    ctx = jsonl.FileCtx(expand_inputs([str(path)])[0], ReadConfig())
    pairs = [(k + 1, r) for k, r in enumerate(rows)]
    by_pairs = json_block_chunk(pairs, ctx)
    by_lines = json_block_chunk(Lines.of_pairs(pairs), jsonl.FileCtx(ctx.file, ReadConfig()))
    assert by_pairs.rows.equals(by_lines.rows) and by_pairs.quarantine.equals(by_lines.quarantine)
