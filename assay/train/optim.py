"""The optimizer and learning-rate schedule a stage starts with (each stage builds fresh ones)."""

from __future__ import annotations

import math
from typing import Any

import torch

from assay.train.config import LoopSettings


def build_optimizer(model: Any, loop: LoopSettings, *, fused: bool) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not on norms, biases or prompt vectors)."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": loop.weight_decay},
        {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=loop.lr, betas=(0.9, 0.999), fused=fused)


def build_scheduler(optimizer: Any, loop: LoopSettings, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup_ratio` of the steps, then cosine decay to zero."""
    warmup = math.ceil(loop.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
