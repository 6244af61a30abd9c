"""Exporting a version's rows to JSONL or Parquet, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from assay.errors import ConfigError
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
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        frame.write_ndjson(tmp) if fmt == "jsonl" else frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return frame.height
