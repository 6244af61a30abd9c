"""Quarantine: input lines that could not become rows, kept with their line number, error and raw text.

Readers work on frames with two extra columns that never reach the caller: the physical line
of each row (`LINE`) and the first error found in it (`ERR`). A row with an error is moved
to the quarantine frame instead of the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from assay import schema as S
from assay.curate.readers.formats import InputFile
from assay.errors import InputError

LINE, ERR = "__assay_line", "__assay_error"  # working columns; never reach the caller


@dataclass(frozen=True)
class Bad:
    """One quarantined line: where, why, and the text as it was in the file."""

    line: int
    error: str
    raw: bytes | str


def with_errors(df: pl.DataFrame, errors: list[str | None]) -> pl.DataFrame:
    """Add row errors found outside the vectorised checks; earlier errors win."""
    new = pl.Series(ERR, errors, dtype=pl.String)
    if ERR in df.columns:
        new = df.select(pl.coalesce(pl.col(ERR), pl.lit(new))).to_series().alias(ERR)
    return df.with_columns(new)


def quarantine_frame(f: InputFile, bad: list[Bad]) -> pl.DataFrame:
    """The quarantined lines of one chunk, in line order, in the version's quarantine schema."""
    bad = sorted(bad, key=lambda b: b.line)
    return pl.DataFrame(
        {
            S.SOURCE: [f.source] * len(bad),
            S.SOURCE_LINE: [b.line for b in bad],
            "error": [b.error for b in bad],
            "raw": [decode_raw(b.raw) for b in bad],
        },
        schema=S.QUARANTINE_SCHEMA,
    )


def decode_raw(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")


def json_raws(rejected: pl.DataFrame) -> list[str]:
    """Raw text for rows of formats without lines: the row as a JSON object."""
    rows = rejected.drop(LINE, ERR, strict=False).to_dicts()
    return [json.dumps(row, ensure_ascii=False, default=str) for row in rows]


def empty_error(f: InputFile) -> InputError:
    return InputError(f"{f.path} has no rows", hint="remove the file from the inputs or fill it")
