"""Supported input formats and the `InputFile` that names one input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import InputError

# Longest first, so ".jsonl.gz" wins over ".gz"-less matches.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".jsonl.gz": "jsonl",
    ".json.gz": "json",
    ".parquet": "parquet",
    ".ndjson": "jsonl",
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
}


@dataclass(frozen=True)
class InputFile:
    """One input: a file, or one split of a Hugging Face `save_to_disk` folder.

    `source` is the stable name written into rows' `source` column (see `expand_inputs`);
    `split` is the input split every row of it belongs to (train/val/test), or None;
    `url` is set for a file in an object store (then `path` is its path there), fetched by its reader.
    """

    path: Path
    source: str
    format: str  # "jsonl" | "json" | "csv" | "tsv" | "parquet" | "hf"
    split: str | None = None
    url: str | None = None


def format_of(path: Path) -> str | None:
    """The reader format for a file name, or None when the extension is not supported."""
    name = path.name.lower()
    return next((fmt for ext, fmt in SUPPORTED_EXTENSIONS.items() if name.endswith(ext)), None)


def stem_of(path: Path) -> str:
    """The file name without its supported extension (`train.jsonl.gz` -> `train`)."""
    name = path.name
    ext = next((e for e in SUPPORTED_EXTENSIONS if name.lower().endswith(e)), "")
    return name[: len(name) - len(ext)]


def supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_EXTENSIONS))


def read_json_file(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
