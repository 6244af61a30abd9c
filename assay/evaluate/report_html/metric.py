"""One metric comparison read from the report, with every formatted string the page shows for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.evaluate.report_html.fmt import (
    as_dict,
    fmt_delta,
    fmt_interval,
    fmt_value,
    is_fraction,
    num,
    signed,
)


@dataclass(frozen=True)
class Metric:
    """A `Comparison` dict, tolerant of missing or malformed fields."""

    name: str
    candidate: float | None
    baseline: float | None
    delta: float | None
    low: float | None
    high: float | None
    n: float | None
    higher_is_better: bool | None
    ratio: bool
    fraction: bool

    @classmethod
    def read(cls, name: str, data: Any) -> Metric:
        d = as_dict(data)
        ratio = d.get("kind") == "ratio"
        hib = d.get("higher_is_better")
        return cls(
            name=str(name),
            candidate=num(d.get("candidate")),
            baseline=num(d.get("baseline")),
            delta=num(d.get("delta")),
            low=num(d.get("ci_low")),
            high=num(d.get("ci_high")),
            n=num(d.get("n")),
            higher_is_better=hib if isinstance(hib, bool) else None,
            ratio=ratio,
            fraction=is_fraction(name, d.get("candidate"), d.get("baseline")) and not ratio,
        )

    @property
    def ref(self) -> float:
        """The "no change" value of the delta."""
        return 1.0 if self.ratio else 0.0

    @property
    def tone(self) -> str:
        """good/bad when the interval (or, without one, the point) lies on one side of no change; else ''."""
        if self.delta is None or self.higher_is_better is None or self.delta == self.ref:
            return ""
        if self.low is not None and self.high is not None and self.low <= self.ref <= self.high:
            return ""
        return "good" if (self.delta > self.ref) == self.higher_is_better else "bad"

    def value(self, side: float | None) -> str:
        return fmt_value(self.name, side, fraction=self.fraction)

    @property
    def delta_text(self) -> str:
        return fmt_delta(self.name, self.delta, fraction=self.fraction, ratio=self.ratio)

    @property
    def interval_text(self) -> str:
        return fmt_interval(self.name, self.low, self.high, fraction=self.fraction, ratio=self.ratio)

    @property
    def relative_text(self) -> str:
        """delta / |baseline| for differences, e.g. "+17.7 % rel." ('' when it is undefined)."""
        if self.ratio or self.delta is None or not self.baseline:
            return ""
        return signed(f"{self.delta / abs(self.baseline) * 100:.1f}") + " % rel."

    @property
    def unit(self) -> str:
        """Metrics sharing a unit share a forest plot's axis; other metrics get one each."""
        if self.ratio:
            return "ratio"
        return "pp" if self.fraction else f"metric:{self.name}"

    def axis_caption(self, *, delta: bool) -> str:
        """What a plot's axis measures, in words."""
        if self.ratio:
            return "candidate ÷ baseline (log scale)" if delta else f"{self.name}"
        if self.fraction:
            return "Δ, percentage points" if delta else f"{self.name}, %"
        return f"Δ {self.name}" if delta else self.name

    def tick(self, value: float, *, delta: bool) -> str:
        """An axis label for this metric's unit: a delta axis (signed) or a value axis."""
        if self.ratio:
            return f"×{value:.3g}" if delta else f"{value:.3g}"
        scaled = value * 100 if self.fraction else value
        text = f"{scaled:.3g}"
        if delta:
            text = signed(text) if scaled else "0"
        return text + (" %" if self.fraction and not delta else "")


def read_metrics(data: Any) -> list[Metric]:
    return [Metric.read(k, v) for k, v in as_dict(data).items()]
