"""The curation runner: reads inputs, runs the configured steps, keeps every removed row, writes a version.

Steps never touch disk; the engine (`assay.curate.engine`) runs them over blocks of rows with
bounded memory, and this module owns the run's resources, statistics and the version write.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from assay.curate import engine as local_engine
from assay.curate.config import CurateConfig
from assay.curate.engine import Ingested, Progress, StepStats, check_read, run_blocks
from assay.curate.evalsets import load_eval_sets
from assay.curate.readers import expand_inputs, file_fingerprint
from assay.curate.readers.remote import list_remote
from assay.curate.spill import Parts, Spill
from assay.curate.steps.decontaminate import EVALS_KEY
from assay.curate.steps.near_dedup import EXISTING_KEY
from assay.schema import ID, REJECT_SCHEMA, content_columns, content_text
from assay.store.atomic import new_staging_dir
from assay.store.blocks import parquet_slices
from assay.store.datasets import DATA, WriteResult
from assay.store.digest import json_digest
from assay.store.urls import is_url

# Bump when a step's behaviour changes for the same config: it invalidates the rerun shortcut.
PIPELINE_VERSION = 2  # 2: input splits are kept (a rerun must not return a version that pooled them)

__all__ = ["CurateResult", "StepStats", "curate", "recipe_key", "run_steps", "step_resources"]


@dataclass
class CurateResult:
    """What a run produced; `reused` means the same inputs and config had already been curated."""

    write: WriteResult
    reused: bool
    counts: dict

    @property
    def version_id(self) -> str:
        return self.write.version.id

    def to_dict(self) -> dict:
        return {
            "version": self.version_id,
            "created": self.write.created,
            "reused": self.reused,
            "kind": self.write.version.kind,
            "path": str(self.write.version.path),
            "counts": self.counts,
        }


def _noop(event: str, info: dict) -> None:
    return None


def curate(
    ws,
    inputs: Sequence[str | Path],
    config: CurateConfig | None = None,
    *,
    name: str | None = None,
    progress: Progress = _noop,
) -> CurateResult:
    """Curate input files into a new dataset version of `ws` (a Workspace).

    >>> result = curate(Workspace.open(), ["data/train.jsonl"])  # doctest: +SKIP
    """
    cfg = config or ws.config.curate
    if cfg.engine == "ray":
        from assay.curate.ray_engine import require_ray

        require_ray()
    if not any(is_url(i) for i in inputs):
        return _curate(ws, inputs, {}, cfg, name, progress)
    staged = new_staging_dir(ws.layout.tmp, "inputs")
    try:
        listed, origin = list_remote(inputs, staged)
        return _curate(ws, listed, origin, cfg, name, progress)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _curate(
    ws, inputs: Sequence[str | Path], origin: dict[str, str], cfg: CurateConfig, name: str | None, progress: Progress
) -> CurateResult:
    """`curate` on listed inputs; `origin` maps local copies of remote folders to their URLs.

    The rerun shortcut is taken before reading when every input is local; a file at a URL is
    fingerprinted as it is read (by the process that fetches it), so then it is taken after reading.
    """
    files = expand_inputs(inputs)
    local = {f.source: file_fingerprint(f) for f in files if f.url is None}
    for fp in local.values():
        fp["path"] = origin.get(fp["path"], fp["path"])
    extra, references = step_resources(ws, cfg)
    if len(local) == len(files) and (done := _reuse(ws, recipe_key(list(local.values()), cfg, references), name)):
        return done
    spill = Spill(new_staging_dir(ws.layout.tmp, "spill"), cfg.memory_mb * 2**20)
    try:
        with _engine(cfg) as engine:
            src = engine.read_inputs(files, cfg, spill, progress)
            check_read(src, cfg.strict)
            fingerprints = [local.get(f.source) or src.fingerprints[f.source] for f in files]
            key = recipe_key(fingerprints, cfg, references)
            if len(local) < len(files) and (done := _reuse(ws, key, name)):
                return done
            read = src.rows.height  # the engine consumes the blocks it reads
            kept, rejects, stats = engine.run_blocks(src, cfg, extra, spill, progress)
            counts = _counts(read, src.quarantine, stats, kept.height, rejects.height if rejects else 0)
            progress("write", {"rows": kept.height})
            write = ws.datasets.write(
                kept,
                kind="curated",
                config=cfg.model_dump(mode="json"),
                rejects=rejects,
                quarantine=src.quarantine,
                counts=counts,
                seed=cfg.seed,
                recipe_key=key,
                parents=references["parents"],
                extra={"inputs": fingerprints, "evals": references["evals"], "pipeline_version": PIPELINE_VERSION},
            )
    finally:
        spill.remove()
    result = CurateResult(write, False, counts)
    _tag(ws, result, name)
    return result


def _reuse(ws, key: str, name: str | None) -> CurateResult | None:
    """The version an earlier run with the same recipe wrote, if any (tagged `name` when given)."""
    existing = ws.datasets.by_recipe(key)
    if existing is None:
        return None
    result = CurateResult(WriteResult(existing, False), True, existing.manifest["counts"])
    _tag(ws, result, name)
    return result


@contextmanager
def _engine(cfg: CurateConfig) -> Iterator:
    """The engine module that runs the passes (`read_inputs`, `run_blocks`), connected for the run."""
    if cfg.engine == "local":
        yield local_engine
        return
    from assay.curate import ray_engine

    with ray_engine.ray_session(cfg.ray):
        yield ray_engine


def step_resources(ws, cfg: CurateConfig) -> tuple[dict, dict]:
    """What steps read besides the rows (eval sets, versions to dedup against), loaded by the runner.

    Returns the StepContext extras and the references that identify them (for the recipe key,
    the manifest and lineage: versions deduplicated against become parents).
    """
    extra: dict = {}
    refs: dict = {"evals": [], "parents": []}
    if "decontaminate" in cfg.steps and cfg.decontaminate.evals:
        evals = load_eval_sets(ws, cfg.decontaminate.evals, cfg.read)
        extra[EVALS_KEY], refs["evals"] = evals.frame, evals.fingerprints
    if "near_dedup" in cfg.steps and cfg.near_dedup.against:
        versions = [ws.datasets.get(r) for r in cfg.near_dedup.against]
        extra[EXISTING_KEY] = VersionTexts([v.path / DATA for v in versions], cfg.read.chunk_rows)
        refs["parents"] = sorted({v.id for v in versions})
    return extra, refs


class VersionTexts:
    """Blocks of `id` and `text` (the content columns as one text) over versions' data files, read a
    slice at a time: versions larger than memory can be deduplicated against."""

    def __init__(self, files: list[Path], rows_per_block: int) -> None:
        self.files, self.rows_per_block = files, rows_per_block
        self.heights = [pq.ParquetFile(f).metadata.num_rows for f in files]

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({ID: pl.String, "text": pl.String})

    @property
    def height(self) -> int:
        return sum(self.heights)

    def frames(self, columns: Sequence[str] | None = None) -> Iterator[pl.DataFrame]:
        wanted = list(columns or self.schema.names())
        for file in self.files:
            text = content_text(content_columns(pl.read_parquet_schema(file))).alias("text")
            yield from parquet_slices(file, self.rows_per_block, [pl.col(ID) if c == ID else text for c in wanted])


def recipe_key(fingerprints: list[dict], cfg: CurateConfig, references: dict | None = None) -> str:
    """What determines a run's output: inputs, referenced eval sets and versions, config, pipeline version."""
    inputs = [{k: f[k] for k in ("source", "format", "sha256")} for f in fingerprints]
    return json_digest(
        {"inputs": inputs, "references": references or {}, "config": cfg.model_dump(mode="json"), "pipeline": PIPELINE_VERSION}
    )


def run_steps(
    rows: pl.DataFrame, cfg: CurateConfig, progress: Progress = _noop, extra: dict | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, list[StepStats]]:
    """The configured steps on rows already read (with ids), in memory: kept rows, rejects, stats."""
    spill = Spill(Path("."), budget_bytes=0, unbounded=True)  # never spills
    parts = spill.parts()
    parts.append(rows)
    src = Ingested(parts, spill.parts(), rows.schema, pl.DataFrame(schema={"_pos": pl.Int64, "_n": pl.Int64}), set())
    kept, rejects, stats = run_blocks(src, cfg, extra or {}, spill, progress)
    rejected = pl.concat(list(rejects.frames())) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
    return pl.concat(list(kept.frames())), rejected, stats


def _counts(read: int, quarantine: Parts, stats: list[StepStats], kept: int, rejected: int) -> dict:
    by_source = pl.concat(list(quarantine.frames(["source"]))).group_by("source").len().sort("source")
    return {
        "input_rows": read + quarantine.height,
        "read": read,
        "quarantined": quarantine.height,
        "quarantined_by_source": dict(by_source.iter_rows()),
        "steps": [s.to_dict() for s in stats],
        "kept": kept,
        "rejected": rejected,
    }


def _tag(ws, result: CurateResult, name: str | None) -> None:
    if name:
        from assay.store.manifest import now_iso

        ws.catalog.tag(result.version_id, name, now_iso(), force=True)
