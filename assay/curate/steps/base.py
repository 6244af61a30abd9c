"""The step contract: a small function over a LazyFrame with a typed config.

A *transform* returns the frame with changed or added columns. A *filter* also adds
`_reason` (null keeps the row) and may add `_detail` and `_duplicate_of`; the runner turns
those into rejects, so a step never drops a row itself and never touches disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from pydantic import BaseModel

REASON, DETAIL, DUPLICATE_OF = "_reason", "_detail", "_duplicate_of"
DECISION_COLUMNS = (REASON, DETAIL, DUPLICATE_OF)


@dataclass(frozen=True)
class StepContext:
    """What a step may know besides its config: the run's seed and the frame's content columns."""

    seed: int = 0
    content_columns: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


StepFn = Callable[[pl.LazyFrame, BaseModel, StepContext], pl.LazyFrame]


@dataclass(frozen=True)
class Step:
    name: str
    config: type[BaseModel]
    fn: StepFn
    is_filter: bool
    doc: str


REGISTRY: dict[str, Step] = {}


def step(name: str, config: type[BaseModel], *, is_filter: bool = False) -> Callable[[StepFn], StepFn]:
    """Register a step function under a name the pipeline config can list."""

    def wrap(fn: StepFn) -> StepFn:
        REGISTRY[name] = Step(name, config, fn, is_filter, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap
