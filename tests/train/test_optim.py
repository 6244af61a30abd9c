"""The optimizer and schedule builders."""

from __future__ import annotations

import math

import pytest
import torch

from assay.train.config import LoopSettings
from assay.train.optim import build_optimizer, build_scheduler


def test_weight_decay_applies_to_matrices_only() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    optimizer = build_optimizer(model, LoopSettings(weight_decay=0.1), fused=False)
    decays = {group["weight_decay"]: sum(p.numel() for p in group["params"]) for group in optimizer.param_groups}
    assert decays == {0.1: 16, 0.0: 4 + 4 + 4}


def test_schedule_warms_up_linearly_then_decays_to_zero() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = build_scheduler(optimizer, LoopSettings(warmup_ratio=0.2, lr=1.0), total=10)
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[:2] == pytest.approx([1 / 3, 2 / 3])
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))
