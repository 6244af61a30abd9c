"""Chunks of canonical rows: a parsed block of a file mapped onto the canonical schema.

Every reader parses a block into a frame of the user's columns plus the working `LINE` column
(and `ERR` where it found errors already); `assemble` maps it, checks the content and sends
rows with errors to the quarantine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from assay import schema as S
from assay.curate.readers.chat_text import parse_message_strings
from assay.curate.readers.config import ReadConfig
from assay.curate.readers.formats import InputFile
from assay.curate.readers.mapping import Mapping, carried, resolve_mapping
from assay.curate.readers.quarantine import ERR, LINE, Bad, quarantine_frame
from assay.curate.readers.rules import content_exprs
from assay.curate.readers.splits import split_values


@dataclass
class Chunk:
    """Rows read from one block of a file, and the lines of that block that could not be used."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


@dataclass
class FileCtx:
    """Per-file state: the mapping is decided once, from the first rows parsed."""

    file: InputFile
    cfg: ReadConfig
    mapping: Mapping | None = None

    def mapping_for(self, columns: Sequence[str]) -> Mapping:
        if self.mapping is None:
            self.mapping = resolve_mapping(columns, self.cfg.columns, self.file)
        return self.mapping


def assemble(
    df: pl.DataFrame, ctx: FileCtx, raw_of: Callable[[pl.DataFrame], list[str]], bad: list[Bad]
) -> Chunk:
    """Map a parsed block onto the canonical schema; rows with content errors join `bad`."""
    if ctx.mapping is None and df.height == 0:
        rows = pl.DataFrame(schema={S.SOURCE: pl.String(), S.SOURCE_LINE: pl.Int64()})
        return Chunk(rows, quarantine_frame(ctx.file, bad))
    m = ctx.mapping_for(df.columns)
    df = parse_message_strings(df, m)
    values, errors = content_exprs(df.schema, m)
    if ERR in df.columns:
        errors.insert(0, pl.col(ERR))
    # with_columns, not select: a literal-only select would make one row of an empty frame
    error = df.with_columns(pl.coalesce(pl.lit(None, pl.String), *errors).alias(ERR))[ERR]
    ok = error.is_null()
    rejected = df.filter(~ok)
    for line, message, raw in zip(
        rejected.get_column(LINE).to_list(), error.filter(~ok).to_list(), raw_of(rejected), strict=True
    ):
        bad.append(Bad(line, message, raw))
    rows = df.filter(ok)
    return Chunk(_canonical(rows, ctx.file, m, values), quarantine_frame(ctx.file, bad))


def _canonical(rows: pl.DataFrame, f: InputFile, m: Mapping, values: dict[str, pl.Expr]) -> pl.DataFrame:
    """source, source_line, the content columns, `split` when the input has one, then the user's columns."""
    split = _split_expr(rows, f, m)
    return rows.select(
        pl.lit(f.source, pl.String).alias(S.SOURCE),
        pl.col(LINE).cast(pl.Int64).alias(S.SOURCE_LINE),
        *(value.cast(S.CONTENT_DTYPES[name]).alias(name) for name, value in values.items()),
        *([split] if split is not None else []),
        *carried(rows.columns, m),
    )


def _split_expr(rows: pl.DataFrame, f: InputFile, m: Mapping) -> pl.Expr | None:
    """Each row's input split: its split column where set, else the file's split (None: no column)."""
    file_split = pl.lit(f.split, pl.String)
    if m.split is None:
        return file_split.alias(S.SPLIT) if f.split else None
    return pl.coalesce(pl.lit(split_values(rows, m.split, f.path)), file_split).alias(S.SPLIT)
