"""Exporting a version's rows to JSONL or Parquet, written atomically."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assay.errors import ConfigError
from assay.store.atomic import atomic_path
from assay.store.datasets import DatasetVersion

FORMATS = ("jsonl", "parquet")
PARTS = ("data", "rejects", "quarantine")


def export_version(version: DatasetVersion, out: Path, *, fmt: str = "jsonl", part: str = "data") -> int:
    """Write one part of a version to `out`; returns the number of rows written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format `{fmt}`", hint=f"use one of {', '.join(FORMATS)}")
    if part not in PARTS:
        raise ConfigError(f"unknown part `{part}`", hint=f"use one of {', '.join(PARTS)}")
    frame: pl.DataFrame = getattr(version, part)().collect()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        frame.write_ndjson(tmp) if fmt == "jsonl" else frame.write_parquet(tmp, compression="zstd")
    return frame.height
