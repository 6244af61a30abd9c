"""The plotted sections: loss curves, metric deltas with intervals, results per category."""

from __future__ import annotations

from itertools import groupby

from assay.evaluate.report_html import svg
from assay.evaluate.report_html.fmt import as_dict, as_list, dicts, e, num
from assay.evaluate.report_html.metric import Metric, read_metrics
from assay.evaluate.report_html.summary import badge, check_anchor

# Reference lines drawn on value axes for metrics with a known neutral point.
NEUTRAL = {"pct_stereotype": 0.5}


def _points(value: object) -> list[tuple[float, float]]:
    """[[step, loss], ...] as float pairs, skipping malformed entries."""
    out = []
    for item in as_list(value):
        if isinstance(item, list | tuple) and len(item) == 2:
            step, loss = num(item[0]), num(item[1])
            if step is not None and loss is not None:
                out.append((step, loss))
    return out


def _stages(value: object) -> list[svg.Stage]:
    out = []
    for s in dicts(value):
        start, end = num(s.get("start_step")), num(s.get("end_step"))
        if start is not None and end is not None:
            out.append(svg.Stage(str(s.get("name", "")), start, end))
    return out


def loss_section(checks: list[dict]) -> str:
    """Train and validation loss of every check that recorded curves, with its findings."""
    parts = []
    for check in checks:
        details = as_dict(check.get("details"))
        curves = as_dict(details.get("curves"))
        chart = svg.loss_chart(
            _points(curves.get("train")),
            _points(curves.get("val")),
            _stages(details.get("stages") or curves.get("stages")),
        )
        findings = "".join(f"<li>{e(f)}</li>" for f in as_list(details.get("findings")))
        if chart or findings:
            parts.append(
                f"<h3>{e(check.get('name'))} {badge(check.get('status'))}</h3><figure>{chart}</figure>"
                + (f"<ul>{findings}</ul>" if findings else "")
            )
    return _section("Loss curves", "".join(parts))


def _forest_group(metrics: list[Metric]) -> str:
    first = metrics[0]
    rows = [
        svg.ForestRow(m.name, m.delta, m.low, m.high, m.tone, f"{m.delta_text}  {m.interval_text}")
        for m in metrics
    ]
    return svg.forest(
        f"deltas ({first.unit})",
        rows,
        ref=first.ref,
        log=first.ratio,
        tick_fmt=lambda t: first.tick(t, delta=True),
        caption=first.axis_caption(delta=True),
    )


def forest_plots(metrics: list[Metric]) -> str:
    """One forest plot per unit (shares in pp, ratios on a log axis, any other metric alone)."""
    ordered = sorted(metrics, key=lambda m: (m.unit != "pp", m.unit != "ratio", m.unit))
    plotted = [list(g) for _, g in groupby(ordered, key=lambda m: m.unit)]
    return "".join(
        f"<figure>{_forest_group(g)}</figure>" for g in plotted if any(m.delta is not None for m in g)
    )


def deltas_section(checks: list[dict]) -> str:
    """Every check in turn: its status, reasons and a forest plot of its metrics' deltas."""
    parts = []
    for i, check in enumerate(checks):
        reasons = "".join(f"<li>{e(r)}</li>" for r in as_list(check.get("reasons")))
        plots = forest_plots(read_metrics(check.get("metrics")))
        parts.append(
            f'<h3 id="{check_anchor(i)}">{e(check.get("name"))} {badge(check.get("status"))}</h3>'
            + (f"<ul class=reasons>{reasons}</ul>" if reasons else "")
            + (plots or "<p class=muted>No delta against the baseline to plot.</p>")
        )
    legend = (
        "<p class=muted>Point: candidate − baseline (or candidate ÷ baseline for ratios, on a log axis); "
        "whiskers: its paired interval; dashed line: no change. Green or red only when the interval "
        "excludes no change, by the metric's direction.</p>"
    )
    return _section("Metric deltas with intervals", legend + "".join(parts)) if checks else ""


def _dot_row(category: str, m: Metric) -> svg.DotRow:
    """The candidate's range is the baseline moved by the paired interval of the delta."""
    low = high = None
    if m.baseline is not None and m.low is not None and m.high is not None:
        low, high = (
            (m.baseline * m.low, m.baseline * m.high)
            if m.ratio
            else (m.baseline + m.low, m.baseline + m.high)
        )
    text = f"{m.value(m.candidate)} vs {m.value(m.baseline)}  Δ {m.delta_text}"
    return svg.DotRow(category, m.candidate, m.baseline, low, high, m.tone, text)


def category_plots(per_category: dict) -> str:
    """A dot plot per metric: one row per category, candidate against baseline."""
    by_metric: dict[str, list[tuple[str, Metric]]] = {}
    for category, metrics in per_category.items():
        for m in read_metrics(metrics):
            by_metric.setdefault(m.name, []).append((str(category), m))
    figures = []
    for name, rows in by_metric.items():
        first = rows[0][1]
        refs = [NEUTRAL[name]] if name in NEUTRAL else []
        plot = svg.dot_plot(
            f"{name} per category",
            [_dot_row(c, m) for c, m in rows],
            refs=refs,
            tick_fmt=lambda t, m=first: m.tick(t, delta=False),
            caption=first.axis_caption(delta=False),
        )
        figures.append(f"<figure><figcaption>{e(name)}</figcaption>{plot}</figure>")
    return "".join(figures)


def category_section(checks: list[dict], extra: dict[int, str]) -> str:
    """Per-category results of every check that has them, followed by `extra` (e.g. bias examples)."""
    parts = []
    for i, check in enumerate(checks):
        plots = category_plots(as_dict(check.get("per_category")))
        if plots or extra.get(i):
            parts.append(
                f"<h3>{e(check.get('name'))} {badge(check.get('status'))}</h3>{plots}{extra.get(i, '')}"
            )
    legend = (
        "<p class=muted>Filled dot: candidate, with its range from the paired interval; hollow dot: baseline; "
        "dashed line: the neutral value where the metric has one (50 % for pct_stereotype).</p>"
    )
    return _section("Results per category", legend + "".join(parts)) if parts else ""


def _section(title: str, body: str) -> str:
    return f"<section><h2>{e(title)}</h2>{body}</section>" if body else ""
