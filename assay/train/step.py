"""One optimizer step and one validation pass: the only code that runs the model.

A step's loss is the summed token cross-entropy divided by the target-token count of the whole step
(every micro-batch of every process), so N processes with batch size B give the same gradients as
one process with N x B. DDP averages gradients over processes, hence the backward of `loss x N`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from assay.errors import ConfigError
from assay.train import batching
from assay.train.batching import Row
from assay.train.config import LoopSettings


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step did, summed over all processes."""

    loss: float
    tokens: int
    seconds: float


def train_step(
    model: Any, micro: list[list[Row]], *, accelerator: Any, optimizer: Any, scheduler: Any, loop: LoopSettings, pad_id: int
) -> StepResult:
    """One optimizer step over this process's micro-batches: backward each, clip, step, zero the gradients."""
    acc = accelerator
    start = time.perf_counter()
    n_global = acc.reduce(torch.tensor(float(sum(batching.target_tokens(mb) for mb in micro)), device=acc.device), "sum")
    model.train()
    total = torch.zeros((), device=acc.device)
    try:
        for i, rows in enumerate(micro):
            sync = contextlib.nullcontext() if i == len(micro) - 1 else acc.no_sync(model)  # all-reduce once, at the last
            with sync:
                loss = micro_batch_loss(model, rows, n_global, loop=loop, pad_id=pad_id, device=acc.device)
                acc.backward(loss * acc.num_processes)
            total += loss.detach()
        if loop.max_grad_norm is not None:
            acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], loop.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    except torch.OutOfMemoryError as exc:
        raise out_of_memory(loop) from exc
    counts = torch.tensor([float(sum(batching.real_tokens(mb) for mb in micro))], device=acc.device)
    return StepResult(float(acc.reduce(total, "sum")), int(acc.reduce(counts, "sum").item()), time.perf_counter() - start)


def micro_batch_loss(model: Any, rows: list[Row], n_tokens: torch.Tensor, *, loop: LoopSettings, pad_id: int, device: Any) -> torch.Tensor:
    """Summed token cross-entropy of a micro-batch divided by the step's target-token count."""
    batch = _on(device, batching.collate(rows, packed=loop.packing, pad_id=pad_id))
    with autocast(device, loop):
        return model(**batch, use_cache=False, num_items_in_batch=n_tokens).loss


def validation_loss(model: Any, rows: list[Row], *, loop: LoopSettings, pad_id: int, device: Any) -> float:
    """Mean cross-entropy over every target token of the validation rows (same on every process).

    `model` is the unwrapped model: validation runs on each process alone, without DDP's hooks.
    """
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in _chunks(rows, loop.batch_size):
            batch = _on(device, batching.collate(chunk, packed=loop.packing, pad_id=pad_id))
            with autocast(device, loop):
                out = model(**batch, use_cache=False, num_items_in_batch=1)  # 1: the summed loss, divided below
            total += float(out.loss)
            count += batching.target_tokens(chunk)
    model.train()
    return total / max(count, 1)


def _chunks(rows: list[Row], size: int) -> Iterable[list[Row]]:
    return (rows[start : start + size] for start in range(0, len(rows), size))


def _on(device: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def autocast(device: Any, loop: LoopSettings) -> Any:
    """Autocast to the stage's precision (a stage may differ from the next), or nothing for fp32."""
    dtype = autocast_dtype(loop)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def autocast_dtype(loop: LoopSettings) -> torch.dtype | None:
    if loop.precision == "bf16":
        return torch.bfloat16
    if loop.precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def load_dtype(method: str, loops: list[LoopSettings]) -> torch.dtype:
    """Frozen base weights in bf16 when every stage autocasts to bf16 (adapters stay fp32); else fp32."""
    if method != "full" and all(autocast_dtype(loop) == torch.bfloat16 for loop in loops) and torch.cuda.is_available():
        return torch.bfloat16
    return torch.float32


def out_of_memory(loop: LoopSettings) -> ConfigError:
    return ConfigError(
        f"out of memory at batch_size = {loop.batch_size}, max_seq_len = {loop.max_seq_len}",
        hint="lower loop.batch_size (raise loop.grad_accum to keep the same step size), shorten loop.max_seq_len, "
        "or set loop.gradient_checkpointing = true",
    )


def set_gradient_checkpointing(model: Any, enabled: bool) -> None:
    """Per stage; transformers 5 calls it activation checkpointing (4.x: gradient checkpointing)."""
    if hasattr(model, "activation_checkpointing_enable"):
        if enabled:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        elif model.is_activation_checkpointing:
            model.activation_checkpointing_disable()
    elif enabled:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif model.is_gradient_checkpointing:
        model.gradient_checkpointing_disable()
