"""The training recipe: read `train`, then `train_stage`, top to bottom; each piece is a small builder.

    result = train(cfg, {"main": frame}, Path("runs/r1"))
    PeftModel.from_pretrained(base_model, result.output_dir)

What happens, in order: resolve the base model offline; format every stage's rows (so data problems
surface before any weights load); load the model and wrap it for the method; then, stage by stage,
build a fresh AdamW and warmup+cosine schedule and run optimizer steps of `grad_accum` micro-batches,
validating every `eval_every` steps, stopping early after `patience` validations without improvement,
checkpointing every `checkpoint_every` steps. The best weights of a stage (lowest validation loss) are
carried into the next stage. The output folder holds the adapter, tokenizer, resolved config,
metrics and the manifest.

Where the pieces live: `stage` formats and packs a stage's rows, `step` runs one optimizer step or a
validation pass, `optim` builds the optimizer and schedule, `state` holds the checkpointed counters
and the early-stopping tracker (values: each update returns a new one), `checkpoint` reads and
writes checkpoints. Nothing is shared between calls: `Session` holds what every stage uses.

Resuming: call `train` again with the same `run_dir`. It continues from `checkpoints/latest` and ends
with the same weights as a run that was never interrupted (same data order, RNG, optimizer state).

Several GPUs: launch the same code with accelerate, nothing changes in it, e.g.
`accelerate launch --num_processes 4 -m assay train run --data ID --base MODEL` (or any script
calling `train`; on CPU, `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 script.py` runs the same
path over gloo, which the tests use). Each process takes its share of every optimizer step's
micro-batches, so N processes with batch_size B train exactly like one process with N x B; DDP
averages gradients of a loss normalised by the global target-token count. Only the main process
writes checkpoints, metrics and the output; every process validates on the same rows, so early
stopping decisions agree. Resume with the same number of processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
import torch

from assay.errors import ConfigError
from assay.train import batching, checkpoint, methods
from assay.train.batching import Row
from assay.train.config import MAIN_DATA, TrainConfig
from assay.train.models import BaseModelRef, load_model, load_tokenizer, resolve_base
from assay.train.optim import build_optimizer, build_scheduler
from assay.train.output import build_manifest, write_output
from assay.train.progress import METRICS, MetricsLog, NullMetricsLog, ProgressLine
from assay.train.stage import Stage, check_refs, fingerprint, prepare_stages
from assay.train.state import RunState
from assay.train.step import StepResult, load_dtype, set_gradient_checkpointing, train_step, validation_loss

Weights = dict[str, torch.Tensor]


@dataclass
class TrainResult:
    """A finished run: the output folder (ready for `ws.models.register`) and its manifest."""

    output_dir: Path
    manifest: dict[str, Any]
    metrics: list[dict[str, Any]]


@dataclass(frozen=True)
class StepInfo:
    """Passed to `on_step` after each optimizer step (and its validation/checkpoint, if due)."""

    stage: str
    stage_step: int
    global_step: int
    loss: float
    val_loss: float | None


@dataclass(frozen=True)
class Session:
    """What every stage uses and none replaces (built once per `train` call, never shared between calls)."""

    cfg: TrainConfig
    run_dir: Path
    accelerator: Any
    model: Any
    tokenizer: Any
    metrics: MetricsLog
    progress: ProgressLine
    on_step: Callable[[StepInfo], None] | None

    @property
    def unwrapped(self) -> Any:
        """The model without its DDP wrapper: what validation runs and checkpoints save."""
        return self.accelerator.unwrap_model(self.model)


def train(
    cfg: TrainConfig,
    data: Mapping[str, pl.DataFrame] | pl.DataFrame,
    run_dir: Path,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train `cfg.base` on `data` and write the model folder to `run_dir/output`.

    `data` maps every dataset reference the config uses (`stages[].data`, `stages[].replay.data`)
    to that version's rows; a stage without `data` reads key "main" (a bare DataFrame means
    {"main": frame}). `run_dir` holds checkpoints and metrics; reusing it resumes the run.
    `on_step` is called after every optimizer step (tests stop a run there to simulate a kill).
    """
    data = {MAIN_DATA: data} if isinstance(data, pl.DataFrame) else dict(data)
    check_refs(cfg, data)
    accelerator = _accelerator()
    with accelerator.main_process_first():  # one process converts a GGUF; the others then find it cached
        base = _resolve(cfg, cache_dir)
    tokenizer = load_tokenizer(base, cfg.chat_template)
    stages = prepare_stages(cfg, data, tokenizer, world=accelerator.num_processes)
    run_id = fingerprint(cfg, base, data, accelerator.num_processes)
    resume = checkpoint.resume_point(run_dir, run_id)  # None for a fresh run; refused if it belongs to another run
    state = RunState(**resume.state) if resume else RunState(fingerprint=run_id)

    _seed_everything(cfg.seed)
    model = load_model(base, dtype=load_dtype(cfg.method, [s.loop for s in stages]), attention=cfg.attention)
    model = methods.adapt(model, cfg, base_path=base.path)
    session = _session(cfg, run_dir, accelerator, model, tokenizer, resume, state, progress=progress, on_step=on_step)
    for stage in stages[state.stage:]:
        state = train_stage(session, stage, state, resume if resume and resume.state["stage"] == stage.index else None)
    return _write_result(session, base, stages, state)


def train_stage(session: Session, stage: Stage, state: RunState, resume: checkpoint.Checkpoint | None) -> RunState:
    """One stage: fresh optimizer and schedule, optimizer steps until done or stopped early, best weights kept."""
    acc, loop = session.accelerator, stage.loop
    set_gradient_checkpointing(session.unwrapped, loop.gradient_checkpointing)
    optimizer = acc.prepare(build_optimizer(session.model, loop, fused=acc.device.type == "cuda"))
    scheduler = build_scheduler(optimizer, loop, stage.total_steps)
    best = _restore(resume, optimizer, scheduler, rank=acc.process_index) if resume else None
    session.progress.start(stage.config.name, stage.total_steps, state.stage_step)
    try:
        while state.stage_step < stage.total_steps and not state.stopped_early:
            for step_rows in _epoch_plan(session, stage, state.epoch)[state.step_in_epoch:]:
                lr = scheduler.get_last_lr()[0]
                step = train_step(session.model, _my_share(session, stage, step_rows), accelerator=acc, optimizer=optimizer,
                                  scheduler=scheduler, loop=loop, pad_id=session.tokenizer.pad_token_id)
                state = state.after_step(loss=step.loss, tokens=step.tokens, seconds=step.seconds)
                _log_step(session, stage, state, step, lr=lr)
                if stage.val_rows and _due(state, loop.eval_every):
                    state, best = _validate(session, stage, state, best)
                if _due(state, loop.checkpoint_every):
                    _save(session, state, best, optimizer, scheduler)
                if session.on_step is not None:
                    session.on_step(StepInfo(stage.config.name, state.stage_step, state.global_step, step.loss, state.last_val))
                if state.stage_step >= stage.total_steps or state.stopped_early:
                    break
            else:  # the epoch ran out before the stage ended: the next epoch begins
                state = state.next_epoch()
    finally:
        session.progress.stop()
    return _finish_stage(session, stage, state, best)


# ---- builders: before the first stage -----------------------------------------------------------


def _accelerator() -> Any:
    """Accelerate handles devices and processes; autocast is applied per stage (its precision may differ)."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision="no")


def _resolve(cfg: TrainConfig, cache_dir: Path | None) -> BaseModelRef:
    if not cfg.base:
        raise ConfigError("no base model: `base` is unset", hint="pass --base PATH (a model folder or .gguf file) or set base in the config")
    return resolve_base(cfg.base, cache_dir=cache_dir)


def _seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)


def _session(
    cfg: TrainConfig, run_dir: Path, accelerator: Any, model: Any, tokenizer: Any, resume: checkpoint.Checkpoint | None,
    state: RunState, *, progress: bool, on_step: Callable[[StepInfo], None] | None,
) -> Session:
    """The run folder ready (half-written checkpoints removed, metrics cut back to the checkpoint), the model prepared."""
    run_dir.mkdir(parents=True, exist_ok=True)
    main = accelerator.is_main_process
    if main:
        checkpoint.clean_staging(run_dir)
    if resume:
        methods.load_trainable_state(model, resume.weights())
    metrics = MetricsLog(run_dir / METRICS, keep_lines=state.metrics_lines) if main else NullMetricsLog()
    return Session(cfg, run_dir, accelerator, accelerator.prepare(model), tokenizer, metrics,
                   ProgressLine(enabled=progress and main), on_step)


# ---- inside a stage ----------------------------------------------------------------------------


def _epoch_plan(session: Session, stage: Stage, epoch: int) -> list[list[list[int]]]:
    """The optimizer steps of an epoch, as row indices per micro-batch (a pure function of seed, stage, epoch)."""
    loop = stage.loop
    return batching.epoch_plan(len(stage.rows), batch_size=loop.batch_size, grad_accum=loop.grad_accum,
                               world=session.accelerator.num_processes, seed=session.cfg.seed, stage=stage.index, epoch=epoch)


def _my_share(session: Session, stage: Stage, step_rows: list[list[int]]) -> list[list[Row]]:
    """This process's micro-batches of an optimizer step (process `rank` takes every `world`-th)."""
    acc = session.accelerator
    return [[stage.rows[i] for i in micro] for micro in step_rows[acc.process_index :: acc.num_processes]]


def _due(state: RunState, every: int | None) -> bool:
    return bool(every) and state.stage_step % every == 0


def _log_step(session: Session, stage: Stage, state: RunState, step: StepResult, *, lr: float) -> None:
    rate = session.progress.step(loss=step.loss, tokens=step.tokens)
    session.metrics.write({
        "split": "train", "stage": stage.config.name, "step": state.stage_step, "global_step": state.global_step,
        "epoch": state.epoch, "loss": step.loss, "lr": lr, "tokens": step.tokens, "tokens_per_s": round(rate, 1),
    })


def _validate(session: Session, stage: Stage, state: RunState, best: Weights | None) -> tuple[RunState, Weights | None]:
    """Validate; returns the state (best loss, patience count) and the best weights so far."""
    loss = validation_loss(session.unwrapped, stage.val_rows, loop=stage.loop, pad_id=session.tokenizer.pad_token_id,
                           device=session.accelerator.device)
    state = state.validated(loss, patience=stage.loop.patience)
    session.progress.validated(loss)
    session.metrics.write({"split": "val", "stage": stage.config.name, "step": state.stage_step,
                           "global_step": state.global_step, "loss": loss})
    improved = state.best_step == state.stage_step
    return state, methods.trainable_state(session.unwrapped) if improved else best


def _finish_stage(session: Session, stage: Stage, state: RunState, best: Weights | None) -> RunState:
    """Validate once more if the last step was not validated, carry the best weights on, checkpoint."""
    if stage.val_rows and state.last_val_step != state.stage_step and not state.stopped_early:
        state, best = _validate(session, stage, state, best)
    if best is not None and state.best_step != state.stage_step:
        methods.load_trainable_state(session.unwrapped, best)
    state = state.next_stage(state.stage_summary(selected="best" if best is not None else "last"))
    _save(session, state, None, None, None, suffix="-end")
    return state


# ---- checkpoints and the output ----------------------------------------------------------------


def _save(session: Session, state: RunState, best: Weights | None, optimizer: Any, scheduler: Any, *, suffix: str = "") -> None:
    """All processes hand in their RNG state; the main process writes the checkpoint atomically.

    A stage-end checkpoint (no optimizer) starts the next stage, which builds a fresh optimizer.
    """
    from accelerate.utils import gather_object

    rng = gather_object([checkpoint.rng_state()])
    if session.accelerator.is_main_process:
        checkpoint.save_checkpoint(
            session.run_dir, step=state.global_step, state=asdict(replace(state, metrics_lines=session.metrics.lines)),
            weights=methods.trainable_state(session.unwrapped), best=best,
            optimizer=optimizer.state_dict() if optimizer is not None else None,
            scheduler=scheduler.state_dict() if scheduler is not None else None,
            rng=rng, keep=_keep(session.cfg, state), suffix=suffix,
        )
    session.accelerator.wait_for_everyone()


def _restore(resume: checkpoint.Checkpoint, optimizer: Any, scheduler: Any, *, rank: int) -> Weights | None:
    """Optimizer, schedule and RNG exactly as the checkpoint left them; returns its best weights."""
    if (opt := resume.optimizer_state()) is not None:
        optimizer.load_state_dict(opt)
    if (sched := resume.scheduler_state()) is not None:
        scheduler.load_state_dict(sched)
    checkpoint.restore_rng(resume.rng_state(rank))
    return resume.best_weights()


def _keep(cfg: TrainConfig, state: RunState) -> int:
    """How many checkpoints the current stage keeps (after the last stage: the last stage's setting)."""
    stages = cfg.resolved_stages()
    return stages[min(state.stage, len(stages) - 1)][1].keep_checkpoints


def _write_result(session: Session, base: BaseModelRef, stages: list[Stage], state: RunState) -> TrainResult:
    """Manifest and output folder (written by the main process only)."""
    acc = session.accelerator
    summaries = [s.stats | done for s, done in zip(stages, state.summaries, strict=True)]
    manifest = build_manifest(session.cfg, base, stages=summaries, state=asdict(state), model=session.unwrapped,
                              device=str(acc.device), processes=acc.num_processes)
    output = session.run_dir / "output"
    if acc.is_main_process:
        write_output(output, model=session.unwrapped, tokenizer=session.tokenizer, cfg=session.cfg, base=base,
                     manifest=manifest, metrics=session.run_dir / METRICS)
    acc.wait_for_everyone()
    return TrainResult(output, manifest, session.metrics.records())
