"""One results schema for every consumer: the terminal summary, `--json`, the report file and its HTML.

A check compares the candidate with its baseline on the same items and returns a `CheckResult`:
per metric a `Comparison` (candidate, baseline, delta with its paired interval, n), the same per
category where the data has categories, and `details` (examples, worst rows, sample generations)
for the HTML page. The gate then sets each check's `status` and `reasons`.

    result.metrics["pct_stereotype"] == Comparison(candidate=0.58, baseline=0.55, delta=0.03, ci_low=-0.01, ...)

The JSON form is versioned by `SCHEMA` (bump it on any change a reader would notice).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA = "assay.eval-report/1"
Status = Literal["pass", "fail", "invalid", "skipped"]
Direction = Literal["higher_is_better", "lower_is_better", "neutral"]


@dataclass(frozen=True)
class Comparison:
    """One metric on both sides: delta = candidate - baseline (or the ratio, for ratio metrics), with its CI."""

    candidate: float | None
    baseline: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    higher_is_better: bool | None = None
    kind: Literal["difference", "ratio"] = "difference"

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})

    @property
    def relative(self) -> float | None:
        """delta / |baseline| for differences (None when the baseline is 0 or missing)."""
        if self.kind != "difference" or self.delta is None or not self.baseline:
            return None
        return self.delta / abs(self.baseline)


@dataclass
class CheckResult:
    """What one check found; `status` and `reasons` are filled in by the gate."""

    name: str
    version: int
    direction: Direction
    metrics: dict[str, Comparison] = field(default_factory=dict)
    per_category: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    status: Status = "pass"
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)  # eval files/sets used: name -> sha256

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "direction": self.direction,
            "status": self.status,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "per_category": {c: {k: v.to_dict() for k, v in m.items()} for c, m in self.per_category.items()},
            "data": dict(self.data),
            "details": _json_safe(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data["name"], version=data["version"], direction=data["direction"], status=data["status"],
            reasons=list(data.get("reasons", [])), notes=list(data.get("notes", [])),
            metrics={k: Comparison.from_dict(v) for k, v in data.get("metrics", {}).items()},
            per_category={c: {k: Comparison.from_dict(v) for k, v in m.items()} for c, m in data.get("per_category", {}).items()},
            data=dict(data.get("data", {})), details=dict(data.get("details", {})),
        )

    @classmethod
    def skipped(cls, name: str, version: int, direction: Direction, why: str) -> CheckResult:
        return cls(name, version, direction, status="skipped", reasons=[why])


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such values become null (and signing refuses them anyway)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    return _finite(value)
