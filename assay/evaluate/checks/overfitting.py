"""`overfitting`: what the loss history says, and how much better the model scores its own training rows.

From `metrics.jsonl`: the final train/validation gap, and the largest rise of validation loss above
its minimum while training loss kept falling. From the model's data: the mean per-byte loss of the
answers on `test` rows over the same on `train` rows, for the candidate and (as a reference) the
baseline, which saw neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from assay.evaluate.checks.base import EvalContext, check
from assay.evaluate.checks.rows import Item, items, prompt_text, read_eval_file
from assay.evaluate.results import CheckResult, Comparison
from assay.evaluate.suite import OverfittingSettings


@check("overfitting", version=1, direction="lower_is_better", settings=OverfittingSettings)
def overfitting(ctx: EvalContext, settings: OverfittingSettings) -> CheckResult:
    """Train/validation gap, validation loss rising while training loss falls, test/train loss ratio."""
    result = overfitting.spec.result()  # type: ignore[attr-defined]
    curves = loss_curves(Path(ctx.model.path) / "metrics.jsonl")
    result.details = {"curves": curves["curves"], "stages": curves["stages"], "findings": []}
    result.metrics |= _history_metrics(curves["curves"], result.details["findings"])
    held_out = _held_out_losses(ctx, settings)
    if held_out is not None:
        result.metrics |= held_out
    else:
        result.notes.append("no held-out rows with answers (no test split, no task files): the test/train loss ratio was not measured")
    return result


def loss_curves(path: Path) -> dict[str, Any]:
    """Train and validation losses by global step, and where each stage starts and ends."""
    train, val, stages = [], [], {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            point = [row.get("global_step", row.get("step")), row["loss"]]
            (train if row.get("split") == "train" else val).append(point)
            stage = stages.setdefault(row.get("stage", "train"), [point[0], point[0]])
            stage[0], stage[1] = min(stage[0], point[0]), max(stage[1], point[0])
    return {"curves": {"train": train, "val": val},
            "stages": [{"name": n, "start_step": a, "end_step": b} for n, (a, b) in stages.items()]}


def _history_metrics(curves: dict[str, list], findings: list[str]) -> dict[str, Comparison]:
    train, val = curves["train"], curves["val"]
    out: dict[str, Comparison] = {}
    if train and val:
        gap = val[-1][1] - _mean_near(train, val[-1][0])
        out["train_val_gap"] = _one(gap, len(val), higher_is_better=False)
        findings.append(f"final validation loss {val[-1][1]:.4f}, training loss near that step {_mean_near(train, val[-1][0]):.4f}")
    rise, steps = val_rise(train, val)
    out["val_rise"] = _one(rise, len(val), higher_is_better=False)
    if rise > 0:
        findings.append(f"validation loss rose {rise:.4f} above its minimum over {steps} steps while training loss fell")
    return out


def val_rise(train: list[list[float]], val: list[list[float]]) -> tuple[float, int]:
    """The largest rise of validation loss above its running minimum during which training loss fell.

    Returns (rise in loss, steps from the minimum to the highest point); (0, 0) when it never rose.
    """
    best, best_step, rise, steps = float("inf"), 0, 0.0, 0
    for step, loss in val:
        if loss < best:
            best, best_step = loss, step
        elif loss - best > rise and _mean_near(train, step) < _mean_near(train, best_step):
            rise, steps = loss - best, int(step - best_step)
    return rise, steps


def _mean_near(points: list[list[float]], step: float, window: int = 5) -> float:
    """Mean training loss over the few logged steps up to `step` (single steps are noisy)."""
    before = [loss for s, loss in points if s <= step][-window:]
    return float(np.mean(before)) if before else float("nan")


def _one(value: float, n: int, *, higher_is_better: bool) -> Comparison:
    """A candidate-only number (the baseline has no training history)."""
    return Comparison(value, None, None, None, None, n, higher_is_better)


def _held_out_losses(ctx: EvalContext, settings: OverfittingSettings) -> dict[str, Comparison] | None:
    """How much better each side scores the model's training rows than held-out rows.

    `test_train_loss_gap` (test minus train loss, nats per byte of the answer) is what the gate reads:
    a ratio of two losses near zero (a model that learned a format scores every row almost
    perfectly) swings wildly, while the gap stays near zero unless training rows are favoured.
    """
    rng = np.random.default_rng(ctx.seed)
    test, train = (_sample(found, settings.max_rows, rng) for found in (_held_out(ctx), items(ctx.rows("train"))))
    if not test or not train:
        return None
    losses = {}
    for side, scoring in ctx.sides.sides():
        ctx.progress(f"overfitting: scoring {len(test)} test and {len(train)} train answers with the {side}")
        with scoring as scorer:
            losses[side] = [_per_byte(ctx, scorer, group) for group in (test, train)]
    n = len(test) + len(train)
    gap = {s: _interval(*losses[s], ctx, lambda t, r: t - r) for s in ("candidate", "baseline")}
    ratio = {s: _interval(*losses[s], ctx, lambda t, r: t / r) for s in ("candidate", "baseline")}
    return {
        "test_train_loss_gap": Comparison(gap["candidate"][0], gap["baseline"][0], gap["candidate"][0] - gap["baseline"][0],
                                          gap["candidate"][1] - gap["baseline"][0], gap["candidate"][2] - gap["baseline"][0], n, False),
        "test_train_loss_ratio": Comparison(ratio["candidate"][0], ratio["baseline"][0], ratio["candidate"][0], ratio["candidate"][1],
                                            ratio["candidate"][2], n, False, "ratio"),
    }


def _held_out(ctx: EvalContext) -> list[Item]:
    """The model's own `test` rows, else the task check's eval files (held out from training by curation)."""
    found = items(ctx.rows("test"))
    task = ctx.suite.config.checks.task
    if found or task is None or not task.enabled:
        return found
    return [item for name in task.files for item in items(read_eval_file(ctx.path(name)))]


def _sample(found: list[Item], n: int, rng: np.random.Generator) -> list[Item]:
    if len(found) <= n:
        return found
    return [found[i] for i in sorted(rng.choice(len(found), size=n, replace=False))]


def _per_byte(ctx: EvalContext, scorer: Any, group: list[Item]) -> np.ndarray:
    """Negative log-likelihood per UTF-8 byte of each answer given its prompt."""
    requests = [(prompt_text(ctx.tokenizer, item), item.reference) for item in group]
    lls = [ll for ll, _ in scorer.loglikelihood(requests)]
    return np.array([-ll / max(len(item.reference.encode()), 1) for ll, item in zip(lls, group, strict=True)])


def _interval(test: np.ndarray, train: np.ndarray, ctx: EvalContext, combine: Any) -> tuple[float, float, float]:
    """combine(mean test loss, mean train loss) with a percentile bootstrap interval, each set resampled on its own."""
    rng = np.random.default_rng(ctx.seed)
    k = ctx.resamples
    values = combine(test[rng.integers(0, len(test), (k, len(test)))].mean(1), train[rng.integers(0, len(train), (k, len(train)))].mean(1))
    alpha = (1 - ctx.confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(combine(test.mean(), train.mean())), float(low), float(high)
