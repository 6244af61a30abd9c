"""Loading eval sets (files or dataset versions) as plain texts for overlap checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from assay.curate.readers import ReadConfig, expand_inputs, file_fingerprint, read_chunks
from assay.errors import NotFoundError
from assay.schema import ID, content_columns, content_text

EVAL_SCHEMA = {"eval_set": pl.String, "eval_row": pl.String, "text": pl.String}


@dataclass(frozen=True)
class EvalSets:
    frame: pl.DataFrame  # eval_set, eval_row (line number or row id), text
    fingerprints: list[dict]


def _is_path(ref: str) -> bool:
    return Path(ref).exists() or any(ch in ref for ch in "*?[") or "/" in ref


def _from_files(ref: str, read: ReadConfig) -> tuple[list[pl.DataFrame], list[dict]]:
    frames, prints = [], []
    for f in expand_inputs([ref]):
        prints.append(file_fingerprint(f))
        for chunk in read_chunks(f, read):
            rows = chunk.rows
            frames.append(
                rows.select(
                    pl.lit(f.source).alias("eval_set"),
                    pl.col("source_line").cast(pl.String).alias("eval_row"),
                    content_text(content_columns(rows.schema)).alias("text"),
                )
            )
    return frames, prints


def _from_version(ws, ref: str) -> tuple[list[pl.DataFrame], list[dict]]:
    v = ws.datasets.get(ref)
    rows = v.data().collect()
    frame = rows.select(
        pl.lit(v.id).alias("eval_set"),
        pl.col(ID).alias("eval_row"),
        content_text(content_columns(rows.schema)).alias("text"),
    )
    return [frame], [{"version": v.id}]


def load_eval_sets(ws, refs: list[str], read: ReadConfig | None = None) -> EvalSets:
    """Every eval row as text, with where it came from; files use the default reader mapping."""
    frames, prints = [], []
    for ref in refs:
        try:
            got = _from_files(ref, read or ReadConfig()) if _is_path(ref) else _from_version(ws, ref)
        except NotFoundError as exc:
            raise NotFoundError(
                f"decontaminate: eval set `{ref}` is neither a file nor a version",
                hint="set [curate.decontaminate] evals to existing files or version ids",
            ) from exc
        frames += got[0]
        prints += got[1]
    frame = pl.concat([pl.DataFrame(schema=EVAL_SCHEMA), *frames], how="diagonal_relaxed")
    return EvalSets(frame, prints)
