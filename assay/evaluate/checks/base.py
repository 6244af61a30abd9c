"""Checks registered by name, with their direction and version (as lm-eval registers tasks).

A check is a function `(ctx: EvalContext, settings) -> CheckResult` that scores the candidate and
its baseline on the same items. The version is written into every result: bump it whenever a change
could move a number, so reports made by different versions are never compared blindly.

    @check("forgetting", version=1, direction="lower_is_better", settings=ForgettingSettings)
    def forgetting(ctx, settings): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay.evaluate.results import CheckResult, Comparison, Direction
from assay.evaluate.stats import Statistic, mean_delta, paired_bootstrap

CheckFn = Callable[["EvalContext", Any], CheckResult]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    version: int
    direction: Direction
    settings: type
    fn: CheckFn
    doc: str

    def result(self, **fields: Any) -> CheckResult:
        """An empty result stamped with this check's name, version and direction."""
        return CheckResult(self.name, self.version, self.direction, **fields)


REGISTRY: dict[str, CheckSpec] = {}


def check(name: str, *, version: int, direction: Direction, settings: type) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        spec = CheckSpec(name, version, direction, settings, fn, (fn.__doc__ or "").strip().splitlines()[0])
        REGISTRY[name] = spec
        fn.spec = spec  # type: ignore[attr-defined]  (so a check stamps its own results: fn.spec.result())
        return fn

    return register


@dataclass
class EvalContext:
    """What a check may use: the two sides, the model version and its data, the suite, a seed."""

    ws: Any
    model: Any  # ModelVersion
    sides: Any  # loading.Sides
    suite: Any  # suite.Suite
    seed: int
    confidence: float = 0.95
    resamples: int = 1000
    progress: Callable[[str], None] = lambda message: None
    contaminated: dict[str, str] = field(default_factory=dict)  # eval set name -> why it is invalid
    _frames: dict[str, Any] = field(default_factory=dict)

    @property
    def tokenizer(self) -> Any:
        return self.sides.tokenizer

    def dataset_ids(self) -> list[str]:
        return list(self.model.manifest.get("data") or self.model.entry.parents)

    def rows(self, split: str) -> Any:
        """The model's dataset versions' rows of one split (a polars frame; `train` = what it trained on)."""
        import polars as pl

        from assay.schema import SPLIT

        if split not in self._frames:
            frames = [self.ws.datasets.get(vid).data().collect() for vid in self.dataset_ids()]
            frames = [f if SPLIT in f.columns else f.with_columns(pl.lit("train").alias(SPLIT)) for f in frames]
            both = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
            self._frames[split] = both.filter(pl.col(SPLIT) == split) if both.height else both
        return self._frames[split]

    def path(self, name: str) -> Path:
        return self.suite.resolve(name)

    def sample(self, items: list[Any], n: int | None) -> list[Any]:
        """At most `n` of the items, a seeded sample in their original order (all when n is None)."""
        if n is None or len(items) <= n:
            return items
        picked = np.random.default_rng(self.seed).choice(len(items), size=n, replace=False)
        return [items[i] for i in sorted(picked.tolist())]

    def compare(self, candidate: Any, baseline: Any, *, statistic: Statistic = mean_delta, higher_is_better: bool | None = True,
                kind: str = "difference", estimate: tuple[float, float] | None = None) -> Comparison:
        """A paired comparison of per-item values with its bootstrap interval (seeded by the run)."""
        c, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
        if len(c) == 0:
            return Comparison(None, None, None, None, None, 0, higher_is_better, kind)  # type: ignore[arg-type]
        interval = paired_bootstrap(c, b, statistic, confidence=self.confidence, n_resamples=self.resamples, seed=self.seed)
        cand, base = estimate or (float(c.mean()), float(b.mean()))
        return Comparison(cand, base, interval.estimate, interval.low, interval.high, len(c), higher_is_better, kind)  # type: ignore[arg-type]
