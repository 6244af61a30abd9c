"""JSON documents: a JSON array of objects, loaded whole (a .json file holding JSON Lines is read as such)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.curate.readers.chunks import Chunk, FileCtx
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.formats import InputFile
from assay.curate.readers.jsonl import BOM, json_block_chunk, open_bytes, read_jsonl
from assay.curate.readers.quarantine import empty_error
from assay.curate.readers.rules import json_kind
from assay.errors import InputError


def read_json(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """A JSON array of objects, in chunks of `cfg.chunk_rows`; each item's line is its position."""
    if _holds_json_lines(f.path):
        yield from read_jsonl(f, cfg)
        return
    data = _load_json_document(f)
    if isinstance(data, dict):
        raise InputError(
            f"{f.path} holds one JSON object, not rows (keys: {', '.join(list(data)[:10])})",
            hint="write the rows as a JSON array of objects, or as JSON Lines (one object per line)",
        )
    if not isinstance(data, list):
        raise InputError(f"{f.path} holds a JSON {json_kind(data)}, not an array of objects")
    if not data:
        raise empty_error(f)
    ctx = FileCtx(f, cfg)
    for start in range(0, len(data), cfg.chunk_rows):
        part = data[start : start + cfg.chunk_rows]
        block = [(start + i + 1, json.dumps(item).encode()) for i, item in enumerate(part)]
        yield json_block_chunk(block, ctx)


def _holds_json_lines(path: Path) -> bool:
    """True when the first non-blank line is a complete JSON object on its own."""
    with open_bytes(path) as fh:
        for line in fh:
            text = line.removeprefix(BOM).strip()
            if text:
                try:
                    return text.startswith(b"{") and isinstance(json.loads(text), dict)
                except (ValueError, RecursionError):
                    return False
    return False


def _load_json_document(f: InputFile) -> Any:
    with open_bytes(f.path) as fh:
        data = fh.read().removeprefix(BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"invalid UTF-8 in {f.path} at line {line} (byte {exc.start + 1})",
            hint="re-save the file as UTF-8",
        ) from exc
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON in {f.path} at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="fix the file, or write it as JSON Lines so that bad rows are quarantined instead",
        ) from exc
