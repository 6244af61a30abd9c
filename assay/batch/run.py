"""`assay batch run`: curate → review → approved version → train each candidate → evaluate → gate → promote.

    outcome = run_batch(ws, Path("batch.toml"))      # BatchOutcome: state "done" | "waiting" | "failed"

Read top to bottom in `run_batch`. Each stage writes versions that are content-addressed, and the
state file remembers their ids, so a rerun continues where the last run stopped: curation and pulls
return the versions they made before, a training run killed midway resumes from its checkpoint and
ends with the same model version id, an evaluated candidate keeps its report. While reviews are
missing the batch stops with state "waiting" (exit 0, for cron and CI) unless asked to wait.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.batch.config import Batch, load_batch
from assay.batch.state import BatchState, Timer
from assay.errors import AssayError

Say = Callable[[str], None]
BATCHES = "batches"


@dataclass
class BatchOutcome:
    state: str  # done | waiting | failed
    batch: str
    message: str
    data: dict[str, Any]
    summary: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "batch": self.batch, "message": self.message,
                "summary": str(self.summary) if self.summary else None, **self.data}


def batch_dir(ws: Any, name: str) -> Path:
    return ws.layout.root / BATCHES / name


def run_batch(ws: Any, path: Path, *, wait: bool = False, poll_s: float = 30.0, say: Say | None = None,
              on_wait: Callable[[dict[str, Any]], None] | None = None) -> BatchOutcome:
    """Run (or continue) the batch described by `path` in workspace `ws`; `say` gets progress messages
    (and training shows its progress line on stderr when `say` is given)."""
    show = say is not None
    say = say or (lambda message: None)
    batch = load_batch(ws, path)
    state = BatchState.load(batch_dir(ws, batch.name), batch.name)
    state.data.update(file=batch.path, file_sha256=batch.sha256, started_at=state.data.get("started_at") or _now())
    curated = curate_stage(ws, batch, state, say)
    approved = review_stage(ws, batch, state, curated, say, wait=wait, poll_s=poll_s, on_wait=on_wait)
    if approved is None:
        waiting = state.stage("review")["waiting_for"]
        return BatchOutcome("waiting", batch.name, waiting, state.data)
    data = training_data(ws, batch, state, approved, say)
    for candidate in batch.file.candidates:
        model = train_stage(ws, batch, state, candidate.name, data, say, show=show)
        if model is not None:
            eval_stage(ws, batch, state, candidate.name, model, say)
    promote_stage(ws, batch, state, say)
    from assay.batch.summary import write_summary

    summary = write_summary(ws, batch, state)
    state.data["finished_at"] = _now()
    state.data["state"] = "done"
    state.save()
    return BatchOutcome("done", batch.name, _verdict(state), state.data, summary)


def _now() -> str:
    from assay.store.manifest import now_iso

    return now_iso()


# ---- curate -------------------------------------------------------------------------------------------------


def curate_stage(ws: Any, batch: Batch, state: BatchState, say: Say) -> str | None:
    """The batch's raw inputs as a curated version (None when the batch only reuses approved versions)."""
    if not batch.inputs:
        return None
    from assay.curate.pipeline import curate

    say(f"curating {len(batch.inputs)} input(s)")
    with Timer() as timer:
        result = curate(ws, batch.inputs, batch.config.curate, name=f"{batch.name}-curated")
    c = result.counts
    state.record("curate", version=result.version_id, reused=result.reused, kept=c["kept"], rejected=c["rejected"],
                 quarantined=c["quarantined"], **timer.fields())
    say(f"curated {result.version_id}: {c['kept']:,} kept, {c['rejected']:,} removed, {c['quarantined']:,} quarantined")
    return result.version_id


# ---- review -------------------------------------------------------------------------------------------------


def review_stage(ws: Any, batch: Batch, state: BatchState, curated: str | None, say: Say, *, wait: bool,
                 poll_s: float, on_wait: Callable[[dict[str, Any]], None] | None) -> str | None:
    """The approved version, or None while reviews are missing (state "waiting")."""
    review = batch.file.review
    if curated is None:
        return ""
    if review.mode == "skip":
        state.record("review", mode="skip", reason=review.reason, version=curated, waiting_for=None)
        say(f"review skipped: {review.reason}")
        return curated
    from assay.label.pull import progress, pull
    from assay.label.push import push

    pushed = push(ws, curated, dataset=batch.dataset, config=batch.config)
    state.record("review", mode="argilla", dataset=pushed.dataset, url=pushed.url, records=pushed.selected, pushed_version=curated)
    while True:
        p = progress(ws, batch.dataset, config=batch.config)
        need = max(1, int(-(-review.complete * p["records"] // 1)))
        if p["completed"] >= need:
            break
        waiting = (f"waiting for {need - p['completed']:,} of {p['records']:,} records to reach {p['min_submitted']} "
                   f"submission(s) in Argilla dataset {batch.dataset} ({p['url']})")
        state.record("review", waiting_for=waiting, completed=p["completed"], needed=need)
        if not wait:
            return None
        if on_wait:
            on_wait(p | {"needed": need})
        time.sleep(poll_s)
    result = pull(ws, batch.dataset, name=f"{batch.name}-approved", config=batch.config)
    state.record("review", version=result.version, kept=result.kept, rejected=result.rejected, waiting_for=None,
                 agreement=result.agreement.get("overall"), completed=p["completed"])
    say(f"approved {result.version}: {result.kept:,} rows kept after review")
    return result.version


def training_data(ws: Any, batch: Batch, state: BatchState, approved: str, say: Say) -> str:
    """The version the candidates train on: the approved rows, plus reused approved versions (a `mix`)."""
    reuse = [ws.datasets.get(ref) for ref in batch.file.batch.reuse]
    if not reuse:
        state.record("data", version=approved)
        return approved
    import polars as pl

    from assay.schema import ID

    versions = reuse + ([ws.datasets.get(approved)] if approved else [])
    frames = [v.data().collect() for v in versions]
    rows = pl.concat(frames, how="diagonal_relaxed").unique(subset=ID, keep="first", maintain_order=True)
    write = ws.datasets.write(rows, kind="mix", config={"mix": [v.id for v in versions]}, parents=[v.id for v in versions],
                              name=f"{batch.name}-mix")
    ws.datasets.tag(write.version.id, f"{batch.name}-mix")
    state.record("data", version=write.version.id, reused=[v.id for v in reuse], rows=rows.height)
    say(f"training data {write.version.id}: {rows.height:,} rows ({len(reuse)} reused version(s) + this batch)")
    return write.version.id


# ---- train --------------------------------------------------------------------------------------------------


def train_stage(ws: Any, batch: Batch, state: BatchState, name: str, data: str, say: Say, *, show: bool = False) -> str | None:
    """Train one candidate (resuming an interrupted run); a failure is recorded and the batch goes on."""
    cfg = batch.trains[name]
    key = _train_key(cfg, data)
    done = state.candidate(name).get("train", {})
    if done.get("key") == key and done.get("model") and _exists(ws.models, done["model"]):
        say(f"candidate {name}: already trained ({done['model']})")
        return done["model"]
    skipped = state.stage("review").get("reason") if batch.file.review.mode == "skip" else None
    say(f"candidate {name}: training ({cfg.method})")
    cfg = cfg.model_copy(update={"allow_unreviewed": cfg.allow_unreviewed or skipped is not None})
    from assay.train.run import run_training

    try:
        with Timer() as timer, PeakMemory() as memory:
            model = run_training(ws, data, None, cfg, name=f"{batch.name}-{name}", progress=show,
                                 extra_manifest={"batch": batch.name, "review_skipped_reason": skipped})
    except AssayError as exc:
        state.record_candidate(name, "train", key=key, model=None, error=exc.message, hint=exc.hint)
        say(f"candidate {name}: training failed: {exc.message}")
        return None
    params = ws.models.get(model).manifest.get("params") or {}
    state.record_candidate(name, "train", key=key, model=model, method=cfg.method, error=None, peak_rss_mb=memory.peak_mb,
                           trainable_params=params.get("trainable"), total_params=params.get("total"), **timer.fields())
    say(f"candidate {name}: {model} in {timer.seconds:.0f} s")
    return model


def _train_key(cfg: Any, data: str) -> str:
    return hashlib.sha256(json.dumps([cfg.digest(), cfg.base, data]).encode()).hexdigest()[:16]


def _exists(store: Any, ref: str) -> bool:
    try:
        store.get(ref)
    except AssayError:
        return False
    return True


class PeakMemory:
    """The process's peak resident memory while the block runs (sampled), and CUDA's peak if any."""

    def __enter__(self) -> PeakMemory:
        self.peak_mb, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        _reset_cuda_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = round(max(self.peak_mb, _rss_mb(), _cuda_peak_mb()), 1)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mb = max(self.peak_mb, _rss_mb())


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


def _reset_cuda_peak() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _cuda_peak_mb() -> float:
    import sys

    torch = sys.modules.get("torch")
    return torch.cuda.max_memory_allocated() / 2**20 if torch is not None and torch.cuda.is_available() else 0.0


# ---- evaluate and promote -------------------------------------------------------------------------------------


def eval_stage(ws: Any, batch: Batch, state: BatchState, name: str, model: str, say: Say) -> None:
    done = state.candidate(name).get("eval", {})
    if done.get("model") == model and done.get("report") and _exists(ws.reports, done["report"]):
        say(f"candidate {name}: already evaluated ({done['report']})")
        return
    from assay.evaluate.run import evaluate_model

    say(f"candidate {name}: evaluating {model}")
    with Timer() as timer:
        outcome = evaluate_model(ws, model, config=batch.config, name=f"{batch.name}-{name}-report", progress=say)
    primary = outcome.decision.primary or {}
    checks = {c.name: {"status": c.status, "metrics": {k: v.to_dict() for k, v in c.metrics.items()}} for c in outcome.checks}
    state.record_candidate(name, "eval", model=model, report=outcome.report_id, passed=outcome.decision.passed,
                           reasons=outcome.decision.reasons, primary=primary, checks=checks, path=str(outcome.path), **timer.fields())
    say(f"candidate {name}: gate {'passed' if outcome.decision.passed else 'failed'} ({outcome.report_id})")


def promote_stage(ws: Any, batch: Batch, state: BatchState, say: Say) -> None:
    """With auto-promotion: the passing candidate with the best primary metric."""
    if not batch.file.promote.auto:
        state.record("promote", auto=False, model=None)
        return
    passing = [(c.get("eval", {}).get("primary", {}).get("candidate"), name, c["eval"]["model"])
               for name, c in state.data["candidates"].items() if c.get("eval", {}).get("passed")]
    passing = [p for p in passing if p[0] is not None]
    if not passing:
        state.record("promote", auto=True, model=None, why="no candidate passed the gate")
        say("no candidate passed the gate: nothing promoted")
        return
    value, name, model = max(passing)
    from assay.evaluate.promote import promote

    promotion = promote(ws, model, alias=batch.file.promote.alias)
    state.record("promote", auto=True, model=model, candidate=name, alias=promotion.alias, report=promotion.report,
                 primary=value, previous=promotion.previous)
    say(f"promoted {model} ({name}) as {promotion.alias}")


def _verdict(state: BatchState) -> str:
    promoted = state.stage("promote").get("model")
    passed = [n for n, c in state.data["candidates"].items() if c.get("eval", {}).get("passed")]
    return f"{len(passed)} of {len(state.data['candidates'])} candidate(s) passed" + (f"; promoted {promoted}" if promoted else "")
