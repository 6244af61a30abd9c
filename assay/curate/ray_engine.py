"""The Ray curation engine: the local engine's passes, with each block's work as a Ray task.

The passes are those of `assay.curate.engine`, and so are the functions run in them: a read task
per input file yields its blocks (ids and occurrence keys computed there); then, per pass, one task
per block merges the pending corpus decisions, runs the row-wise steps (normalise, quality, PII),
computes the next corpus step's keys (MinHash band keys, content hashes, split groups) and returns
the kept rows, the rejects and its statistics. Blocks stay in Ray's object store (which spills to
disk when full); the driver holds only object references, the small per-row keys while a corpus
step decides, and the decisions. Corpus decisions are made by the same `decide` functions as
locally, so a Ray run writes the version the local engine writes, id for id (tests check it);
near-dedup's corpus-wide work (band buckets, candidate verification, clusters) runs as tasks too
(`assay.curate.ray_graph`), so no process reads every candidate's text.

Ray tasks rather than Ray Data's `map_batches`: a block's pass has several outputs (kept rows, keys,
statistics, each filter's rejects) and a pass must meet its decisions row for row in block order, which
plain tasks with fixed returns give directly.

A task whose worker dies is retried (`[curate.ray] retries`); a run that still fails raises and
leaves no version. Local input files are read on the driver's node (local paths need no shared file
system), files at object-store URLs on any node (each fetched by the task that reads it); block tasks
run wherever the cluster has room.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pyarrow as pa

from assay.curate.config import CurateConfig, RayConfig
from assay.curate.engine import (
    Ingested,
    Pending,
    Progress,
    RunState,
    StepStats,
    final_ids,
    ingested,
    with_provisional_ids,
)
from assay.curate.engine import run_blocks as engine_run_blocks
from assay.curate.ray_common import frame_of, get, ray_module
from assay.curate.ray_graph import RayBands, RayGraph
from assay.curate.readers import InputFile, read_chunks
from assay.curate.readers.remote import fetched
from assay.curate.spill import Entry, Parts, Spill
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.base import CorpusInput
from assay.errors import ConfigError
from assay.schema import QUARANTINE_SCHEMA

# Per pass, each block task returns: kept rows, the corpus step's keys, its statistics, then the
# rejects of each filter step of the pass.
_FIXED_RETURNS = 3


def require_ray() -> None:
    """Fail early (exit 2, naming the extra) when the Ray engine is asked for without Ray."""
    ray_module()


@contextmanager
def ray_session(cfg: RayConfig) -> Iterator[Any]:
    """Ray, connected: an already initialised session is used as is; else the configured address
    (or RAY_ADDRESS) is joined, or a local cluster started and shut down at the end."""
    ray = ray_module()
    if ray.is_initialized():
        yield ray
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
        else:
            ray.init(
                address="local",  # a new cluster, never one a stale `ray start` left on this machine
                num_cpus=cfg.num_cpus,
                object_store_memory=cfg.object_store_mb * 2**20 if cfg.object_store_mb else None,
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
                configure_logging=False,
            )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, OSError) as exc:
        raise _unreachable(address, exc) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A quick TCP check of a `host:port` address: Ray itself retries an unreachable one for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms are resolved by Ray, which fails fast on them
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


def _unreachable(address: str | None, exc: BaseException) -> ConfigError:
    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if address is None:
        return ConfigError(
            f"cannot start a local Ray cluster: {why}",
            hint="check memory and /tmp space ([curate.ray] num_cpus, object_store_mb), or run with the local "
            "engine ([curate] engine = \"local\")",
        )
    return ConfigError(
        f"cannot connect to the Ray cluster at {address!r}: {why}",
        hint="start one with `ray start --head` and pass the address it prints ([curate.ray] address or "
        "RAY_ADDRESS), or leave both unset to start a local cluster; a cluster started by `ray start` checks a "
        "token: set RAY_AUTH_MODE=token and make its token readable here (~/.ray/auth_token or RAY_AUTH_TOKEN)",
    )


@dataclass
class _RefEntry(Entry):
    """A block held in Ray's object store (an Arrow table); read on demand, zero-copy on its node."""

    ref: Any = None

    def read(self, columns: list[str] | None = None) -> pl.DataFrame:
        cols = None if columns is None else [c for c in columns if c in self.schema]
        if cols == []:
            return pl.DataFrame()
        table = ray_module().get(self.ref)
        return frame_of(table if cols is None else table.select(cols))

    def free(self) -> None:
        super().free()
        self.ref = None  # Ray frees the block once no reference is left


def _to_arrow(df: pl.DataFrame) -> pa.Table:
    return df.to_arrow()


# ---- reading -------------------------------------------------------------------------------------


def _read_file(f: InputFile, cfg: CurateConfig) -> Iterator[Any]:
    """Yield a remote input's fingerprint (None for a local one), then per chunk of the file a small
    summary and its rows (with provisional ids) as Arrow. A remote input is fetched on this node."""
    with fetched(f) as (local, fingerprint):
        yield fingerprint
        for chunk in read_chunks(local, cfg.read):
            block, keys = with_provisional_ids(chunk.rows)
            # The summary first: a reader's error surfaces at the summary the driver reads.
            yield {"height": block.height, "schema": block.schema, "quarantine": chunk.quarantine, "keys": keys}
            yield _to_arrow(block)


_SPREAD = {"scheduling_strategy": "SPREAD"}


def read_inputs(files: list[InputFile], cfg: CurateConfig, spill: Spill, progress: Progress) -> Ingested:
    """`engine.read_inputs` with one Ray task per file; blocks stay in Ray. A local file is read on
    the driver's node (where its path is), a remote one on any node."""
    ray = ray_module()
    task, here = ray.remote(_read_file), _here(ray)
    streams = [
        task.options(num_returns="streaming", max_retries=cfg.ray.retries, **(_SPREAD if f.url else here)).remote(f, cfg)
        for f in files
    ]
    rows, quarantine, keys, fingerprints = spill.parts(), spill.parts(), [], {}
    quarantine.append(pl.DataFrame(schema=QUARANTINE_SCHEMA))
    bad = 0
    for f, stream in zip(files, streams, strict=True):
        n, refs = 0, iter(stream)
        fingerprint = get(ray, next(refs))
        if fingerprint is not None:
            fingerprints[f.source] = fingerprint
        for info_ref in refs:
            info = get(ray, info_ref)
            rows.entries.append(_RefEntry(info["height"], info["schema"], ref=next(refs)))
            quarantine.append(info["quarantine"])
            if info["keys"] is not None:
                keys.append(info["keys"])
            n, bad = n + info["height"], bad + info["quarantine"].height
            progress("read", {"source": f.source, "rows": n, "quarantined": bad})
    return ingested(rows, quarantine, keys, fingerprints)


def _here(ray: Any) -> dict:
    """Scheduling options that keep a task on the driver's node (where the input paths are)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


# ---- the passes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PassSpec:
    """What every block task of a pass needs (put in the object store once per pass)."""

    cfg: CurateConfig
    ctx: StepContext
    schema: pl.Schema
    merge: str | None  # the corpus step whose decisions this pass merges
    row_steps: tuple[str, ...]
    corpus: str | None  # the corpus step whose keys this pass computes
    filters: tuple[str, ...]  # filter steps of this pass, in order: one rejects output each


def _block_task(spec: _PassSpec, table: pa.Table, ids: tuple[pl.DataFrame, bool] | None, decisions: pl.DataFrame | None) -> tuple:
    """One block through one pass, as the local engine's `_pass` does it (the same functions)."""
    block = frame_of(table, spec.schema)
    if ids is not None:
        hits, whole = ids
        block = final_ids(block, 0, SimpleNamespace(repeats=hits), whole)  # type: ignore[arg-type]
    quiet = Spill(Path("."), 0, unbounded=True)
    names = [n for n in (spec.merge, *spec.row_steps) if n]
    run = RunState(spec.cfg, spec.ctx, quiet, lambda *_: None, {n: quiet.parts() for n in spec.filters},
               {n: StepStats(n) for n in names})
    if spec.merge is not None:
        merge = REGISTRY[spec.merge].corpus.merge  # type: ignore[union-attr]
        block = run.step(spec.merge, block, lambda b: merge(b, decisions))
    for name in spec.row_steps:
        block = run.step(name, block, run.row_step(name))
    keys = None
    if spec.corpus is not None:
        t0 = time.perf_counter()
        keys = REGISTRY[spec.corpus].corpus.keys(block, spec.cfg.step_config(spec.corpus), spec.ctx)  # type: ignore[union-attr]
        run.stats.setdefault(spec.corpus, StepStats(spec.corpus)).seconds += time.perf_counter() - t0
    rejects = [pl.concat(list(run.rejects[n].frames())) for n in spec.filters]
    meta = {
        "height": block.height,
        "schema": block.schema,
        "keys": None if keys is None else (keys.height, keys.schema),
        "rejects": [(r.height, r.schema) for r in rejects],
        "stats": run.stats,
    }
    return (_to_arrow(block), None if keys is None else _to_arrow(keys), meta, *(_to_arrow(r) for r in rejects))


def run_blocks(
    src: Ingested, cfg: CurateConfig, extra: dict, spill: Spill, progress: Progress
) -> tuple[Parts, Parts | None, list[StepStats]]:
    """`engine.run_blocks` with each block's work as a Ray task: kept rows, rejects, stats."""
    ray = ray_module()
    return engine_run_blocks(src, cfg, extra, spill, progress, run_pass=_RayPasses(ray, ray.remote(_block_task)).run)


@dataclass
class _RayPasses:
    """Passes with each block's work as a task; the run's rejects and stats go to its RunState."""

    ray: Any
    task: Any

    def run(
        self, state: RunState, current: Parts, pending: Pending | None, row_steps: list[str], corpus: str | None, src: Ingested | None
    ) -> tuple[Parts, Pending | None]:
        """One pass: a task per block, then the corpus step's decision from the blocks' keys."""
        merge = pending[0] if pending else None
        names = [n for n in (merge, *row_steps) if n]
        filters = tuple(n for n in names if REGISTRY[n].is_filter)
        spec = self.ray.put(_PassSpec(state.cfg, state.ctx, current.schema, merge, tuple(row_steps), corpus, filters))
        calls = self._submit(state, spec, current, pending, len(filters), src)
        metas = self._wait(state, [c[2] for c in calls], current.heights(), "+".join(names) or corpus or "merge")
        current.release()
        out, keys = self._collect(state, calls, metas, filters)
        if corpus is None:
            return out, None
        return out, (corpus, self._decide(state, corpus, out, keys))

    def _submit(self, state: RunState, spec: Any, current: Parts, pending: Pending | None, n_filters: int, src: Ingested | None) -> list:
        """A task per block, with its share of the pending decisions (and its id fixes on the first pass).

        The first pass spreads its tasks over the nodes: every input block was read on the driver's node,
        where Ray's default (run where the data is) would keep them. Later passes run where their block is.
        """
        task = self.task.options(num_returns=_FIXED_RETURNS + n_filters, max_retries=state.cfg.ray.retries,
                                 retry_exceptions=False, scheduling_strategy="SPREAD" if src is not None else "DEFAULT")
        calls, offset = [], 0
        for k, entry in enumerate(current.entries):
            ids = _id_fix(src, offset, entry.height, k) if src is not None else None
            part = pending[1].slice(offset, entry.height) if pending else None
            offset += entry.height
            calls.append(task.remote(spec, entry.ref, ids, part))
        return calls

    def _collect(self, state: RunState, calls: list, metas: list[dict], filters: tuple[str, ...]) -> tuple[Parts, Parts]:
        """The pass's kept blocks and keys (object references), its rejects and statistics."""
        out, keys = state.spill.parts(), state.spill.parts()
        for call, meta in zip(calls, metas, strict=True):
            out.entries.append(_RefEntry(meta["height"], meta["schema"], ref=call[0]))
            if meta["keys"] is not None:
                keys.entries.append(_RefEntry(*meta["keys"], ref=call[1]))
            for name, (height, schema), ref in zip(filters, meta["rejects"], call[_FIXED_RETURNS:], strict=True):
                state.rejects[name].entries.append(_RefEntry(height, schema, ref=ref))
            for name, st in meta["stats"].items():
                _add(state.stats[name], st)
        return out, keys

    def _decide(self, state: RunState, corpus: str, out: Parts, keys: Parts) -> pl.DataFrame:
        """The corpus step's decisions, in row order, by its own `decide` (near-dedup's pair work via `ray_graph`)."""
        state.progress("step", {"step": corpus, "rows": out.height})
        t0 = time.perf_counter()
        spec = REGISTRY[corpus].corpus
        assert spec is not None
        data = CorpusInput(keys, out.schema, out.texts_of, state.spill.scratch, band_reader=RayBands,
                           pair_graph=RayGraph(out))
        decisions = spec.decide(data, state.cfg.step_config(corpus), state.ctx)
        keys.release()
        state.stats[corpus].seconds += time.perf_counter() - t0
        return decisions

    def _wait(self, state: RunState, refs: list, heights: list[int], label: str) -> list[dict]:
        """Each block's summary, in block order; progress as blocks finish; a failed task fails the run."""
        done: dict[int, dict] = {}
        index = {ref: k for k, ref in enumerate(refs)}
        waiting, rows = list(refs), 0
        while waiting:
            ready, waiting = self.ray.wait(waiting, num_returns=1)
            for ref in ready:
                done[index[ref]] = get(self.ray, ref)
                rows += heights[index[ref]]
                state.progress("step", {"step": label, "rows": rows})
        return [done[k] for k in range(len(refs))]


def _id_fix(src: Ingested, start: int, height: int, k: int) -> tuple[pl.DataFrame, bool] | None:
    """A block's repeated rows (positions within the block) when its provisional ids need fixing."""
    hits = src.repeats.filter(pl.col("_pos").is_between(start, start + height - 1))
    whole = k in src.recompute
    if not whole and hits.height == 0:
        return None
    return hits.with_columns(pl.col("_pos") - start), whole


def _add(total: StepStats, part: StepStats) -> None:
    total.rows_in += part.rows_in
    total.rows_out += part.rows_out
    total.changed += part.changed
    total.seconds += part.seconds
    for reason, n in part.removed.items():
        total.removed[reason] = total.removed.get(reason, 0) + n
