"""The training recipe: read `train` top to bottom; every step is a small function below it.

    result = train(cfg, {"main": frame}, Path("runs/r1"))
    PeftModel.from_pretrained(base_model, result.output_dir)

What happens, in order: resolve the base model offline; format every stage's rows (so data problems
surface before any weights load); load the model and wrap it for the method; then, stage by stage,
build a fresh AdamW and warmup+cosine schedule and run optimizer steps of `grad_accum` micro-batches,
validating every `eval_every` steps, stopping early after `patience` validations without improvement,
checkpointing every `checkpoint_every` steps. The best weights of a stage (lowest validation loss) are
carried into the next stage. The output folder holds the adapter, tokenizer, resolved config,
metrics and the manifest.

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

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from assay.errors import ConfigError, InputError
from assay.train import batching, checkpoint, methods
from assay.train.batching import Row
from assay.train.config import MAIN_DATA, LoopSettings, StageConfig, TrainConfig
from assay.train.formatting import Example, FormatStats, format_rows, split_rows
from assay.train.models import BaseModelRef, load_model, load_tokenizer, resolve_base
from assay.train.output import build_manifest, write_output
from assay.train.progress import METRICS, MetricsLog, ProgressLine


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


@dataclass
class Stage:
    """A stage's rows, ready to train: packed (or single-example) sequences and their bookkeeping."""

    index: int
    config: StageConfig
    loop: LoopSettings
    rows: list[Row]
    val_rows: list[Row]
    stats: dict[str, Any]
    total_steps: int


@dataclass
class RunState:
    """Where the run is; saved in every checkpoint's state.json, so this is the data position too."""

    fingerprint: str
    stage: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    stage_step: int = 0
    global_step: int = 0
    tokens: int = 0
    best_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    last_loss: float | None = None
    last_val: float | None = None
    last_val_step: int | None = None
    metrics_lines: int = 0
    train_seconds: float = 0.0
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def next_stage(self) -> None:
        self.stage += 1
        self.epoch = self.step_in_epoch = self.stage_step = self.bad_evals = 0
        self.best_loss = self.best_step = self.last_loss = self.last_val = self.last_val_step = None
        self.stopped_early = False


@dataclass
class Run:
    """What the stage loop needs at hand (built once per `train` call, never shared between calls)."""

    cfg: TrainConfig
    run_dir: Path
    accelerator: Any
    model: Any
    tokenizer: Any
    state: RunState
    metrics: MetricsLog
    progress: ProgressLine
    on_step: Callable[[StepInfo], None] | None
    best: dict[str, torch.Tensor] | None = None
    optimizer: Any = None
    scheduler: Any = None


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
    _check_refs(cfg, data)
    accelerator = _accelerator()
    with accelerator.main_process_first():  # one process converts a GGUF; the others then find it cached
        base = _resolve(cfg, cache_dir)
    tokenizer = load_tokenizer(base, cfg.chat_template)
    stages = [_prepare_stage(cfg, i, stage, loop, data, tokenizer, accelerator.num_processes)
              for i, (stage, loop) in enumerate(cfg.resolved_stages())]
    fingerprint = _fingerprint(cfg, base, data, accelerator.num_processes)
    resume = _resume_point(run_dir, fingerprint)

    _seed_everything(cfg.seed)
    model = methods.adapt(load_model(base, dtype=_load_dtype(cfg, stages), attention=cfg.attention), cfg, base_path=base.path)
    run = _start_run(cfg, run_dir, accelerator, model, tokenizer, resume, fingerprint, progress=progress, on_step=on_step)
    for stage in stages[run.state.stage:]:
        _run_stage(run, stage, resume if resume and resume.state["stage"] == stage.index else None)
    return _finish_run(run, base, stages)


def _start_run(
    cfg: TrainConfig, run_dir: Path, accelerator: Any, model: Any, tokenizer: Any, resume: checkpoint.Checkpoint | None,
    fingerprint: str, *, progress: bool, on_step: Callable[[StepInfo], None] | None,
) -> Run:
    """Fresh state, or the checkpoint's weights, best weights, counters and truncated metrics log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        checkpoint.clean_staging(run_dir)
    state = RunState(**resume.state) if resume else RunState(fingerprint=fingerprint)
    if resume:
        methods.load_trainable_state(model, resume.weights())
    main = accelerator.is_main_process
    return Run(
        cfg, run_dir, accelerator, accelerator.prepare(model), tokenizer, state,
        MetricsLog(run_dir / METRICS, keep_lines=state.metrics_lines) if main else _NullLog(),
        ProgressLine(enabled=progress and main), on_step, best=resume.best_weights() if resume else None,
    )


def _finish_run(run: Run, base: BaseModelRef, stages: list[Stage]) -> TrainResult:
    """Manifest and output folder (written by the main process only)."""
    acc, state = run.accelerator, run.state
    summaries = [s.stats | done for s, done in zip(stages, state.summaries, strict=True)]
    manifest = build_manifest(run.cfg, base, stages=summaries, state=asdict(state), model=_unwrap(run),
                              device=str(acc.device), processes=acc.num_processes)
    output = run.run_dir / "output"
    if acc.is_main_process:
        write_output(output, model=_unwrap(run), tokenizer=run.tokenizer, cfg=run.cfg, base=base, manifest=manifest, metrics=run.run_dir / METRICS)
    acc.wait_for_everyone()
    return TrainResult(output, manifest, run.metrics.records())


# ---- before any weights load ------------------------------------------------------------------


def _check_refs(cfg: TrainConfig, data: Mapping[str, pl.DataFrame]) -> None:
    missing = [ref for ref in cfg.data_refs() if ref not in data]
    if missing:
        raise InputError(
            f"no data given for {missing} (the config reads {cfg.data_refs()}; given: {sorted(data)})",
            hint="pass every dataset version the stages name; a stage without `data` reads the --data version",
        )


def _resolve(cfg: TrainConfig, cache_dir: Path | None) -> BaseModelRef:
    if not cfg.base:
        raise ConfigError("no base model: `base` is unset", hint="pass --base PATH (a model folder or .gguf file) or set base in the config")
    return resolve_base(cfg.base, cache_dir=cache_dir)


def _accelerator() -> Any:
    """Accelerate handles devices and processes; autocast is applied per stage (its precision may differ)."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision="no")


def _prepare_stage(
    cfg: TrainConfig, index: int, stage: StageConfig, loop: LoopSettings, data: Mapping[str, pl.DataFrame], tokenizer: Any, world: int
) -> Stage:
    """Format a stage's train (+ replay) and val rows and pack them; errors name the stage and data."""
    ref = stage.data or MAIN_DATA
    what = f"stage {stage.name!r} (data {ref!r})"
    frame = data[ref]
    examples, stats = format_rows(split_rows(frame, "train", what=what), tokenizer, max_seq_len=loop.max_seq_len)
    _require_usable(examples, stats, what)
    replay, replay_stats = _replay_examples(cfg, index, stage, data, tokenizer, loop, len(examples))
    val, val_stats = format_rows(split_rows(frame, "val", what=what).head(loop.val_max_rows), tokenizer, max_seq_len=loop.max_seq_len)
    seed = cfg.seed * 1000 + index
    train_all = examples + replay
    rows = batching.pack(train_all, max_len=loop.max_seq_len, seed=seed) if loop.packing else batching.unpacked(train_all)
    val_rows = batching.pack(val, max_len=loop.max_seq_len, seed=seed) if loop.packing else batching.unpacked(val)
    per_epoch = batching.steps_per_epoch(len(rows), batch_size=loop.batch_size, grad_accum=loop.grad_accum, world=world)
    if per_epoch == 0:
        raise InputError(f"{what}: {len(rows)} sequences cannot give each of {world} processes a micro-batch", hint="use fewer processes or more data")
    total = min(loop.max_steps or math.inf, loop.epochs * per_epoch)
    info = {
        "name": stage.name, "data": ref, "train": stats.as_dict(), "val": val_stats.as_dict(), "replay": replay_stats,
        "sequences": len(rows), "val_sequences": len(val_rows), "steps_per_epoch": per_epoch, "planned_steps": int(total),
        "loop": loop.model_dump(mode="json"),
    }
    return Stage(index, stage, loop, rows, val_rows, info, int(total))


def _require_usable(examples: list[Example], stats: FormatStats, what: str) -> None:
    if not examples:
        raise InputError(
            f"{what}: none of its {stats.rows} train rows is usable (dropped: {dict(stats.dropped) or 'none'})",
            hint="check the content columns; chat rows need a non-empty assistant turn inside max_seq_len",
        )


def _replay_examples(
    cfg: TrainConfig, index: int, stage: StageConfig, data: Mapping[str, pl.DataFrame], tokenizer: Any, loop: LoopSettings, n_stage: int
) -> tuple[list[Example], dict[str, Any] | None]:
    """A seeded sample of the replay version's train rows, sized so it makes up `share` of the stage."""
    if stage.replay is None:
        return [], None
    replay = stage.replay
    frame = split_rows(data[replay.data], "train", what=f"replay data {replay.data!r} of stage {stage.name!r}")
    wanted = round(replay.share / (1 - replay.share) * n_stage)
    rng = np.random.default_rng([cfg.seed, index, 104729])
    with_replacement = wanted > frame.height
    picks = rng.choice(frame.height, size=wanted, replace=with_replacement) if wanted else np.array([], dtype=int)
    examples, stats = format_rows(frame[picks.tolist()], tokenizer, max_seq_len=loop.max_seq_len)
    actual = len(examples) / max(len(examples) + n_stage, 1)
    info = {"data": replay.data, "share": replay.share, "actual_share": round(actual, 4), "rows_wanted": wanted,
            "sampled_with_replacement": with_replacement, "available_rows": frame.height, "format": stats.as_dict()}
    return examples, info


def _fingerprint(cfg: TrainConfig, base: BaseModelRef, data: Mapping[str, pl.DataFrame], processes: int) -> str:
    """What a resumed run must share with the killed one: config, base weights, exact rows, process count."""
    h = hashlib.sha256(f"{cfg.digest()}\0{base.sha256}\0{processes}".encode())
    for ref in cfg.data_refs():
        frame = data[ref]
        h.update(f"\0{ref}\0{frame.height}\0{frame.columns}\0{int(frame.hash_rows(seed=0).sum())}".encode())
    return h.hexdigest()


def _resume_point(run_dir: Path, fingerprint: str) -> checkpoint.Checkpoint | None:
    found = checkpoint.load_latest(run_dir)
    if found is not None and found.state.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"{run_dir} holds a checkpoint of a different run (config, base model, data or number of processes differ)",
            hint="use a new run folder, or delete this one to start over",
        )
    return found


def _seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)


def _load_dtype(cfg: TrainConfig, stages: list[Stage]) -> torch.dtype:
    """Frozen base weights in bf16 when every stage autocasts to bf16 (adapters stay fp32); else fp32."""
    if cfg.method != "full" and all(_autocast_dtype(s.loop) == torch.bfloat16 for s in stages) and torch.cuda.is_available():
        return torch.bfloat16
    return torch.float32


def _autocast_dtype(loop: LoopSettings) -> torch.dtype | None:
    if loop.precision == "bf16":
        return torch.bfloat16
    if loop.precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


# ---- the stage loop -------------------------------------------------------------------------------


def _run_stage(run: Run, stage: Stage, resume: checkpoint.Checkpoint | None) -> None:
    """Optimizer steps until the stage's planned steps are done or early stopping ends it."""
    state, loop = run.state, stage.loop
    _set_gradient_checkpointing(run, loop.gradient_checkpointing)
    run.optimizer = run.accelerator.prepare(_optimizer(run, loop))
    run.scheduler = _scheduler(run.optimizer, loop, stage.total_steps)
    if resume is not None:
        _restore(run, resume)
    else:
        run.best = None
    run.progress.start(stage.config.name, stage.total_steps, state.stage_step)
    try:
        while state.stage_step < stage.total_steps and not state.stopped_early:
            _run_epoch(run, stage)
    finally:
        run.progress.stop()
    _finish_stage(run, stage)


def _run_epoch(run: Run, stage: Stage) -> None:
    state, loop = run.state, stage.loop
    plan = batching.epoch_plan(
        len(stage.rows), batch_size=loop.batch_size, grad_accum=loop.grad_accum,
        world=run.accelerator.num_processes, seed=run.cfg.seed, stage=stage.index, epoch=state.epoch,
    )
    for step_rows in plan[state.step_in_epoch:]:
        mine = step_rows[run.accelerator.process_index :: run.accelerator.num_processes]
        lr = run.scheduler.get_last_lr()[0]
        loss, tokens, seconds = _train_step(run, stage, [[stage.rows[i] for i in mb] for mb in mine])
        _after_step(run, stage, loss, tokens, seconds, lr=lr)
        if state.stage_step >= stage.total_steps or state.stopped_early:
            return
    state.epoch, state.step_in_epoch = state.epoch + 1, 0


def _train_step(run: Run, stage: Stage, micro: list[list[Row]]) -> tuple[float, int, float]:
    """One optimizer step over this process's micro-batches; the loss is a mean over all target tokens."""
    acc, model, loop = run.accelerator, run.model, stage.loop
    start = time.perf_counter()
    n_global = acc.reduce(torch.tensor(float(sum(batching.target_tokens(mb) for mb in micro)), device=acc.device), "sum")
    model.train()
    total = torch.zeros((), device=acc.device)
    try:
        for i, rows in enumerate(micro):
            sync = contextlib.nullcontext() if i == len(micro) - 1 else acc.no_sync(model)
            with sync:
                loss = _loss(run, loop, rows, n_global)
                acc.backward(loss * acc.num_processes)
            total += loss.detach()
        if loop.max_grad_norm is not None:
            acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], loop.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    except torch.OutOfMemoryError as exc:
        raise _out_of_memory(loop) from exc
    counts = torch.tensor([float(sum(batching.real_tokens(mb) for mb in micro))], device=acc.device)
    return float(acc.reduce(total, "sum")), int(acc.reduce(counts, "sum").item()), time.perf_counter() - start


def _loss(run: Run, loop: LoopSettings, rows: list[Row], n_tokens: torch.Tensor) -> torch.Tensor:
    """Summed token cross-entropy of a micro-batch divided by the step's target-token count."""
    batch = batching.collate(rows, packed=loop.packing, pad_id=run.tokenizer.pad_token_id)
    batch = {k: v.to(run.accelerator.device) for k, v in batch.items()}
    with _autocast(run, loop):
        return run.model(**batch, use_cache=False, num_items_in_batch=n_tokens).loss


def _autocast(run: Run, loop: LoopSettings) -> Any:
    dtype = _autocast_dtype(loop)
    device = run.accelerator.device.type
    return torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _out_of_memory(loop: LoopSettings) -> ConfigError:
    return ConfigError(
        f"out of memory at batch_size = {loop.batch_size}, max_seq_len = {loop.max_seq_len}",
        hint="lower loop.batch_size (raise loop.grad_accum to keep the same step size), shorten loop.max_seq_len, "
        "or set loop.gradient_checkpointing = true",
    )


def _after_step(run: Run, stage: Stage, loss: float, tokens: int, seconds: float, *, lr: float) -> None:
    """Bookkeeping after a step: counters, metrics, validation and early stopping, checkpoint, hook."""
    state, loop = run.state, stage.loop
    state.stage_step += 1
    state.global_step += 1
    state.step_in_epoch += 1
    state.tokens += tokens
    state.train_seconds += seconds
    state.last_loss = loss
    rate = run.progress.step(loss=loss, tokens=tokens)
    run.metrics.write({"split": "train", "stage": stage.config.name, "step": state.stage_step, "global_step": state.global_step,
                       "epoch": state.epoch, "loss": loss, "lr": lr, "tokens": tokens, "tokens_per_s": round(rate, 1)})
    if stage.val_rows and loop.eval_every and state.stage_step % loop.eval_every == 0:
        _validate_and_track(run, stage)
    if loop.checkpoint_every and state.stage_step % loop.checkpoint_every == 0:
        _checkpoint(run, optimizer_state=True)
    if run.on_step is not None:
        run.on_step(StepInfo(stage.config.name, state.stage_step, state.global_step, loss, state.last_val))


def _validate_and_track(run: Run, stage: Stage) -> None:
    """Validate; keep the best weights; count validations without improvement against patience."""
    state = run.state
    loss = validation_loss(run.model, stage.val_rows, run=run, loop=stage.loop)
    state.last_val, state.last_val_step = loss, state.stage_step
    run.progress.validated(loss)
    run.metrics.write({"split": "val", "stage": stage.config.name, "step": state.stage_step, "global_step": state.global_step, "loss": loss})
    if state.best_loss is None or loss < state.best_loss:
        state.best_loss, state.best_step, state.bad_evals = loss, state.stage_step, 0
        run.best = methods.trainable_state(_unwrap(run))
    else:
        state.bad_evals += 1
        state.stopped_early = stage.loop.patience is not None and state.bad_evals >= stage.loop.patience


def validation_loss(model: Any, rows: list[Row], *, run: Run, loop: LoopSettings) -> float:
    """Mean cross-entropy over every target token of the validation rows (same on every process)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), loop.batch_size):
            chunk = rows[start : start + loop.batch_size]
            batch = batching.collate(chunk, packed=loop.packing, pad_id=run.tokenizer.pad_token_id)
            batch = {k: v.to(run.accelerator.device) for k, v in batch.items()}
            with _autocast(run, loop):
                out = _unwrap(run)(**batch, use_cache=False, num_items_in_batch=1)
            total += float(out.loss)
            count += batching.target_tokens(chunk)
    model.train()
    return total / max(count, 1)


def _finish_stage(run: Run, stage: Stage) -> None:
    """Validate once more if the last step was not validated, carry the best weights on, checkpoint."""
    state = run.state
    if stage.val_rows and state.last_val_step != state.stage_step and not state.stopped_early:
        _validate_and_track(run, stage)
    if run.best is not None and state.best_step != state.stage_step:
        methods.load_trainable_state(_unwrap(run), run.best)
    state.summaries.append({
        "steps": state.stage_step, "epochs_started": state.epoch + (1 if state.step_in_epoch else 0),
        "stopped_early": state.stopped_early, "best_val_loss": state.best_loss, "best_step": state.best_step,
        "final_train_loss": state.last_loss, "final_val_loss": state.last_val, "selected": "best" if run.best is not None else "last",
    })
    state.next_stage()
    run.best = None
    _checkpoint(run, optimizer_state=False, suffix="-end")


def _checkpoint(run: Run, *, optimizer_state: bool, suffix: str = "") -> None:
    """All processes hand in their RNG state; the main process writes the checkpoint atomically."""
    from accelerate.utils import gather_object

    rng = gather_object([checkpoint.rng_state()])
    run.state.metrics_lines = run.metrics.lines
    if run.accelerator.is_main_process:
        checkpoint.save_checkpoint(
            run.run_dir, step=run.state.global_step, state=asdict(run.state),
            weights=methods.trainable_state(_unwrap(run)), best=run.best,
            optimizer=run.optimizer.state_dict() if optimizer_state else None,
            scheduler=run.scheduler.state_dict() if optimizer_state else None,
            rng=rng, keep=_keep(run), suffix=suffix,
        )
    run.accelerator.wait_for_everyone()


def _restore(run: Run, resume: checkpoint.Checkpoint) -> None:
    """Optimizer, schedule and RNG exactly as the checkpoint left them."""
    if (opt := resume.optimizer_state()) is not None:
        run.optimizer.load_state_dict(opt)
    if (sched := resume.scheduler_state()) is not None:
        run.scheduler.load_state_dict(sched)
    checkpoint.restore_rng(resume.rng_state(run.accelerator.process_index))


def _optimizer(run: Run, loop: LoopSettings) -> torch.optim.Optimizer:
    """AdamW with decay on matrices only; fused kernels on CUDA."""
    params = [(n, p) for n, p in run.model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": loop.weight_decay},
        {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    fused = run.accelerator.device.type == "cuda"
    return torch.optim.AdamW(groups, lr=loop.lr, betas=(0.9, 0.999), fused=fused)


def _scheduler(optimizer: Any, loop: LoopSettings, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup_ratio` of the steps, then cosine decay to zero."""
    warmup = math.ceil(loop.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _set_gradient_checkpointing(run: Run, enabled: bool) -> None:
    """Per stage; transformers 5 calls it activation checkpointing (4.x: gradient checkpointing)."""
    model = _unwrap(run)
    if hasattr(model, "activation_checkpointing_enable"):
        if enabled:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif model.is_activation_checkpointing:
            model.activation_checkpointing_disable()
    elif enabled:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif model.is_gradient_checkpointing:
        model.gradient_checkpointing_disable()


def _unwrap(run: Run) -> Any:
    return run.accelerator.unwrap_model(run.model)


def _keep(run: Run) -> int:
    stages = run.cfg.resolved_stages()
    return stages[min(run.state.stage, len(stages) - 1)][1].keep_checkpoints


class _NullLog(MetricsLog):
    """Metrics log of a non-main process: counts nothing, writes nothing."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        return None

    def records(self) -> list[dict[str, Any]]:
        return []

