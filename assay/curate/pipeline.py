"""The curation runner: reads inputs, runs the configured steps, keeps every removed row, writes a version.

Steps never touch disk; this module owns reading, statistics, rejects and the version write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assay.curate.config import CurateConfig
from assay.curate.evalsets import load_eval_sets
from assay.curate.ids import assign_ids
from assay.curate.readers import InputFile, expand_inputs, file_fingerprint, read_chunks
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.base import DECISION_COLUMNS, DETAIL, DUPLICATE_OF, REASON
from assay.curate.steps.decontaminate import EVALS_KEY
from assay.curate.steps.near_dedup import EXISTING_KEY
from assay.errors import InputError
from assay.schema import CONTENT_DTYPES, ID, QUARANTINE_SCHEMA, REJECT_SCHEMA, content_columns, content_text
from assay.store.datasets import WriteResult
from assay.store.digest import json_digest

# Bump when a step's behaviour changes for the same config: it invalidates the rerun shortcut.
PIPELINE_VERSION = 2  # 2: input splits are kept (a rerun must not return a version that pooled them)

Progress = Callable[[str, dict], None]


@dataclass
class StepStats:
    step: str
    rows_in: int
    rows_out: int
    removed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    changed: int = 0  # kept rows whose content the step rewrote

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "in": self.rows_in,
            "out": self.rows_out,
            "removed": self.removed,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
        }


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
    files = expand_inputs(inputs)
    fingerprints = [file_fingerprint(f) for f in files]
    extra, references = step_resources(ws, cfg)
    key = recipe_key(fingerprints, cfg, references)
    existing = ws.datasets.by_recipe(key)
    if existing is not None:
        result = CurateResult(WriteResult(existing, False), True, existing.manifest["counts"])
        _tag(ws, result, name)
        return result
    rows, quarantine = ingest(files, cfg, progress)
    kept, rejects, stats = run_steps(rows, cfg, progress, extra)
    counts = _counts(rows.height, quarantine, stats, kept.height, rejects.height)
    write = ws.datasets.write(
        kept,
        kind="curated",
        config=cfg.model_dump(mode="json"),
        rejects=rejects,
        quarantine=quarantine,
        counts=counts,
        seed=cfg.seed,
        recipe_key=key,
        parents=references["parents"],
        extra={"inputs": fingerprints, "evals": references["evals"], "pipeline_version": PIPELINE_VERSION},
    )
    result = CurateResult(write, False, counts)
    _tag(ws, result, name)
    return result


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
        extra[EXISTING_KEY] = pl.concat([_id_and_text(v.data().collect()) for v in versions])
        refs["parents"] = sorted({v.id for v in versions})
    return extra, refs


def _id_and_text(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(ID, content_text(content_columns(df.schema)).alias("text"))


def recipe_key(fingerprints: list[dict], cfg: CurateConfig, references: dict | None = None) -> str:
    """What determines a run's output: inputs, referenced eval sets and versions, config, pipeline version."""
    inputs = [{k: f[k] for k in ("source", "format", "sha256")} for f in fingerprints]
    return json_digest(
        {"inputs": inputs, "references": references or {}, "config": cfg.model_dump(mode="json"), "pipeline": PIPELINE_VERSION}
    )


def ingest(
    files: list[InputFile], cfg: CurateConfig, progress: Progress = _noop
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read every file into one canonical frame with ids, plus the quarantined lines."""
    frames, bad = [], []
    for f in files:
        n = 0
        for chunk in read_chunks(f, cfg.read):
            frames.append(chunk.rows)
            bad.append(chunk.quarantine)
            n += chunk.rows.height
            progress("read", {"source": f.source, "rows": n, "quarantined": sum(b.height for b in bad)})
    quarantine = pl.concat([pl.DataFrame(schema=QUARANTINE_SCHEMA), *bad], how="diagonal_relaxed")
    if cfg.strict and quarantine.height:
        raise InputError(
            _quarantine_summary(quarantine, "malformed input rows (--strict)"),
            hint="fix those lines, or run without --strict to quarantine them",
        )
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if rows.height == 0:
        raise InputError(
            _quarantine_summary(quarantine, "no usable rows in the input"),
            hint="check that the files hold JSON objects / CSV rows with content columns",
        )
    rows = rows.with_columns(pl.col(c).cast(t) for c, t in CONTENT_DTYPES.items() if c in rows.columns)
    return assign_ids(rows), quarantine


def _quarantine_summary(q: pl.DataFrame, headline: str) -> str:
    lines = [f"{headline}: {q.height} row(s) quarantined"]
    for src, line, err in q.select("source", "source_line", "error").head(5).iter_rows():
        lines.append(f"  {src}:{line}: {err}")
    return "\n".join(lines)


def run_steps(
    rows: pl.DataFrame, cfg: CurateConfig, progress: Progress = _noop, extra: dict | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, list[StepStats]]:
    """Apply the configured steps in order; filters' removed rows become rejects with step and reason.

    Each step's stats also count the kept rows whose content it changed (normalised, redacted).
    """
    ctx = StepContext(seed=cfg.seed, content_columns=content_columns(rows.schema), extra=extra or {})
    content = content_text(ctx.content_columns)
    kept, rejected, stats = rows, [], []
    before = kept.select(content).to_series()
    for name in cfg.steps:
        step, t0, rows_in = REGISTRY[name], time.perf_counter(), kept.height
        progress("step", {"step": name, "rows": rows_in})
        out = step.fn(kept.lazy(), cfg.step_config(name), ctx).collect()
        after = out.select(content).to_series()
        changed = before.ne_missing(after)
        removed: dict[str, int] = {}
        if step.is_filter:
            out, rej, drop = _split(out, name)
            rejected.append(rej)
            removed = dict(sorted(rej.group_by("reason").len().iter_rows(), key=lambda kv: -kv[1]))
            after, changed = after.filter(~drop), changed.filter(~drop)
        kept, before = out, after
        stats.append(StepStats(name, rows_in, kept.height, removed, time.perf_counter() - t0, int(changed.sum())))
    rejects = (
        pl.concat(rejected, how="diagonal_relaxed")
        if rejected
        else pl.DataFrame(schema=REJECT_SCHEMA)
    )
    return kept, rejects, stats


def _split(out: pl.DataFrame, step_name: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    for col in DECISION_COLUMNS:
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    drop = out.get_column(REASON).is_not_null()
    rej = out.filter(drop).rename({REASON: "reason", DETAIL: "detail", DUPLICATE_OF: "duplicate_of"})
    rej = rej.with_columns(pl.lit(step_name).alias("step"))
    return out.filter(~drop).drop(DECISION_COLUMNS), rej, drop


def _counts(read: int, quarantine: pl.DataFrame, stats: list[StepStats], kept: int, rejected: int) -> dict:
    return {
        "input_rows": read + quarantine.height,
        "read": read,
        "quarantined": quarantine.height,
        "quarantined_by_source": dict(quarantine.group_by("source").len().sort("source").iter_rows()),
        "steps": [s.to_dict() for s in stats],
        "kept": kept,
        "rejected": rejected,
    }


def _tag(ws, result: CurateResult, name: str | None) -> None:
    if name:
        from assay.store.manifest import now_iso

        ws.catalog.tag(result.version_id, name, now_iso(), force=True)
