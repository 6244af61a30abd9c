"""Hand-built inline SVG plots: loss curves, forest plots of deltas, candidate-vs-baseline dot plots.

No scripts and no external fonts: each plot is one well-formed `<svg>` element (it parses as XML)
whose text is escaped with `e()`. Every plot carries a `<title>` per mark, so a hover shows the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assay.evaluate.report_html.fmt import e

NS = 'xmlns="http://www.w3.org/2000/svg"'
INK, MUTED, GRID = "#1d2433", "#667085", "#e4e7ee"
TONES = {"good": "#2e7d32", "bad": "#c62828", "": "#4a5568"}
TRAIN, VAL = "#4a6fa5", "#d9822b"
MAX_POINTS = 600  # per loss series: enough for the shape, small enough for the page
LABEL_CHARS = 28


@dataclass(frozen=True)
class Axis:
    """Maps data values in [lo, hi] onto pixels [p0, p1] (on a log scale when `log`)."""

    lo: float
    hi: float
    p0: float
    p1: float
    log: bool = False

    def at(self, value: float) -> float:
        f = math.log if self.log else float
        span = f(self.hi) - f(self.lo)
        return (
            self.p0 + (f(value) - f(self.lo)) / span * (self.p1 - self.p0)
            if span
            else (self.p0 + self.p1) / 2
        )


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def domain(values: Sequence[float], *, pad: float = 0.08, log: bool = False) -> tuple[float, float]:
    """The range of `values` with a margin on both sides (multiplicative on a log scale)."""
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log(lo), math.log(hi)
    span = (hi - lo) or (abs(hi) or 1.0) * 0.1
    lo, hi = lo - span * pad, hi + span * pad
    return (math.exp(lo), math.exp(hi)) if log else (lo, hi)


def _text(
    x: float, y: float, label: str, *, anchor: str = "start", muted: bool = False, size: int = 11
) -> str:
    fill = f' fill="{MUTED}"' if muted else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{fill}>{e(label)}</text>'


def _line(
    x1: float, y1: float, x2: float, y2: float, stroke: str, *, width: float = 1, dash: str = ""
) -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"{d}/>'


def _clip(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg {NS} width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{e(label)}" font-family="system-ui, sans-serif" fill="{INK}"><title>{e(label)}</title>{body}</svg>'
    )


# ---- loss curves --------------------------------------------------------------------------------


def thin(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most `limit` points: consecutive points averaged in equal buckets (keeps the curve's shape)."""
    if len(points) <= limit:
        return points
    size = len(points) / limit
    buckets = [points[int(i * size) : int((i + 1) * size)] for i in range(limit)]
    return [(sum(p[0] for p in b) / len(b), sum(p[1] for p in b) / len(b)) for b in buckets if b]


@dataclass(frozen=True)
class Stage:
    name: str
    start: float
    end: float


def _stage_marks(stages: Sequence[Stage], x: Axis, top: float, bottom: float) -> str:
    out = []
    for i, s in enumerate(stages):
        x0, x1 = x.at(max(s.start, x.lo)), x.at(min(s.end, x.hi))
        fill = "#f3f5fa" if i % 2 == 0 else "#fbfbfd"
        out.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0):.1f}" height="{bottom - top}" fill="{fill}">'
            f"<title>stage {e(s.name)}: steps {s.start:g}–{s.end:g}</title></rect>"
        )
        if i:
            out.append(_line(x0, top, x0, bottom, MUTED, dash="4 3"))
        out.append(_text(x0 + 4, top - 5, _clip(s.name), muted=True, size=10))
    return "".join(out)


def _axes(x: Axis, y: Axis, y_fmt: Callable[[float], str]) -> str:
    out = []
    for t in nice_ticks(y.lo, y.hi):
        py = y.at(t)
        out += [_line(x.p0, py, x.p1, py, GRID), _text(x.p0 - 6, py + 4, y_fmt(t), anchor="end", size=10)]
    for t in nice_ticks(x.lo, x.hi, 6):
        out.append(_text(x.at(t), y.p0 + 14, f"{t:g}", anchor="middle", size=10))
    out.append(_line(x.p0, y.p0, x.p1, y.p0, MUTED))
    return "".join(out)


def _series(points: list[tuple[float, float]], x: Axis, y: Axis, colour: str, name: str) -> str:
    if not points:
        return ""
    coords = " ".join(f"{x.at(a):.1f},{y.at(b):.1f}" for a, b in points)
    out = f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.6"><title>{e(name)}</title></polyline>'
    if len(points) <= 60:
        out += "".join(
            f'<circle cx="{x.at(a):.1f}" cy="{y.at(b):.1f}" r="2.6" fill="{colour}"><title>{e(name)} step {a:g}: {b:.4g}</title></circle>'
            for a, b in points
        )
    return out


def loss_chart(
    train: list[tuple[float, float]], val: list[tuple[float, float]], stages: Sequence[Stage]
) -> str:
    """Train and validation loss against the global step, with training stages as shaded bands."""
    width, height, left, right, top, bottom = 900, 300, 56, 16, 34, 260
    train, val = thin(sorted(train)), thin(sorted(val))
    steps = [p[0] for p in train + val] + [v for s in stages for v in (s.start, s.end)]
    losses = [p[1] for p in train + val]
    if not losses:
        return ""
    x = Axis(min(steps), max(steps), left, width - right)
    y_lo, y_hi = domain(losses, pad=0.06)
    y = Axis(y_lo, y_hi, bottom, top)
    legend = (
        _line(width - 190, 12, width - 170, 12, TRAIN, width=2)
        + _text(width - 165, 16, "train loss")
        + _line(width - 95, 12, width - 75, 12, VAL, width=2)
        + _text(width - 70, 16, "val loss")
    )
    body = (
        _stage_marks(stages, x, top, bottom)
        + _axes(x, y, lambda t: f"{t:.3g}")
        + _series(train, x, y, TRAIN, "train loss")
        + _series(val, x, y, VAL, "val loss")
        + legend
        + _text((left + width - right) / 2, height - 8, "global step", anchor="middle", size=10)
        + f'<text x="14" y="{(top + bottom) / 2:.1f}" font-size="10" text-anchor="middle" transform="rotate(-90 14 {(top + bottom) / 2:.1f})">loss</text>'
    )
    return _svg(width, height, "training and validation loss by step", body)


# ---- row plots: one metric or category per row --------------------------------------------------

ROW_H, LABEL_W, VALUE_W, WIDTH = 24, 180, 250, 900


@dataclass(frozen=True)
class ForestRow:
    """A delta with its interval; `tone` is good/bad/'' (colours the point)."""

    label: str
    delta: float | None
    low: float | None
    high: float | None
    tone: str
    text: str  # the formatted delta and interval, printed right of the plot


@dataclass(frozen=True)
class DotRow:
    """Candidate and baseline on one row; `low`/`high` is the candidate's range from the paired interval."""

    label: str
    candidate: float | None
    baseline: float | None
    low: float | None
    high: float | None
    tone: str
    text: str


def _row_axis(values: list[float], refs: Sequence[float], log: bool) -> Axis:
    usable = [v for v in [*values, *refs] if not log or v > 0]
    lo, hi = domain(usable or ([0.5, 2.0] if log else [0.0, 1.0]), pad=0.1, log=log)
    return Axis(lo, hi, LABEL_W + 10, WIDTH - VALUE_W - 10, log=log)


def _row_frame(
    title: str,
    labels: Sequence[str],
    texts: Sequence[str],
    x: Axis,
    refs: Sequence[float],
    tick_fmt: Callable[[float], str],
    marks: str,
    caption: str,
    head: int = 6,
) -> str:
    """Labels left, values right, reference lines, a bottom axis: the frame every row plot shares."""
    bottom = head + ROW_H * len(labels)
    out = [
        _line(x.p0, bottom, x.p1, bottom, MUTED),
        _text(WIDTH - VALUE_W, bottom + 14, caption, size=10, muted=True),
    ]
    for t in nice_ticks(x.lo, x.hi) if not x.log else _log_ticks(x):
        out += [
            _line(x.at(t), head, x.at(t), bottom, GRID),
            _text(x.at(t), bottom + 14, tick_fmt(t), anchor="middle", size=10),
        ]
    out += [_line(x.at(r), head - 2, x.at(r), bottom, INK, dash="4 3") for r in refs if x.lo <= r <= x.hi]
    for i, (label, text) in enumerate(zip(labels, texts, strict=True)):
        cy = head + ROW_H * i + ROW_H / 2 + 4
        out.append(
            f'<text x="{LABEL_W:.1f}" y="{cy:.1f}" font-size="12" text-anchor="end">{e(_clip(label))}<title>{e(label)}</title></text>'
        )
        out.append(_text(WIDTH - VALUE_W, cy, text, size=11))
    return _svg(WIDTH, bottom + 22, title, "".join(out) + marks)


def _log_ticks(x: Axis) -> list[float]:
    ticks = nice_ticks(x.lo, x.hi, 4)
    return [t for t in ticks if t > 0] or [1.0]


def _whisker(x: Axis, low: float | None, high: float | None, cy: float, colour: str) -> str:
    if low is None or high is None or (x.log and min(low, high) <= 0):
        return ""
    x0, x1 = x.at(low), x.at(high)
    return (
        _line(x0, cy, x1, cy, colour, width=1.6)
        + _line(x0, cy - 5, x0, cy + 5, colour, width=1.6)
        + _line(x1, cy - 5, x1, cy + 5, colour, width=1.6)
    )


def _dot(x: Axis, value: float | None, cy: float, fill: str, stroke: str, tip: str) -> str:
    if value is None or (x.log and value <= 0):
        return ""
    return f'<circle cx="{x.at(value):.1f}" cy="{cy:.1f}" r="4.5" fill="{fill}" stroke="{stroke}" stroke-width="1.5"><title>{e(tip)}</title></circle>'


def forest(
    title: str,
    rows: Sequence[ForestRow],
    *,
    ref: float,
    log: bool,
    tick_fmt: Callable[[float], str],
    caption: str,
) -> str:
    """Deltas as points with interval whiskers, against a dashed line at `ref` (0, or 1 for ratios)."""
    values = [v for r in rows for v in (r.delta, r.low, r.high) if v is not None]
    x = _row_axis(values, [ref], log)
    marks = []
    for i, r in enumerate(rows):
        cy = 6 + ROW_H * i + ROW_H / 2
        colour = TONES.get(r.tone, TONES[""])
        marks.append(
            _whisker(x, r.low, r.high, cy, colour)
            + _dot(x, r.delta, cy, colour, colour, f"{r.label}: {r.text}")
        )
    return _row_frame(
        title, [r.label for r in rows], [r.text for r in rows], x, [ref], tick_fmt, "".join(marks), caption
    )


def dot_plot(
    title: str,
    rows: Sequence[DotRow],
    *,
    refs: Sequence[float],
    tick_fmt: Callable[[float], str],
    caption: str,
) -> str:
    """Candidate (filled, with its interval) and baseline (hollow) per row, joined by a thin line."""
    values = [v for r in rows for v in (r.candidate, r.baseline, r.low, r.high) if v is not None]
    x = _row_axis(values, refs, False)
    marks = []
    for i, r in enumerate(rows):
        cy = 6 + ROW_H * i + ROW_H / 2
        colour = TONES.get(r.tone, TONES[""])
        if r.candidate is not None and r.baseline is not None:
            marks.append(_line(x.at(r.baseline), cy, x.at(r.candidate), cy, "#b8c0cc", width=3))
        marks.append(_whisker(x, r.low, r.high, cy, colour))
        marks.append(_dot(x, r.baseline, cy, "#ffffff", MUTED, f"{r.label} baseline"))
        marks.append(_dot(x, r.candidate, cy, colour, colour, f"{r.label} candidate: {r.text}"))
    return _row_frame(
        title, [r.label for r in rows], [r.text for r in rows], x, refs, tick_fmt, "".join(marks), caption
    )
