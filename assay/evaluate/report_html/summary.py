"""The top of the page: the verdict, what was judged against what, and the table of checks."""

from __future__ import annotations

from typing import Any

from assay.evaluate.report_html.fmt import (
    DASH,
    as_dict,
    as_list,
    dicts,
    e,
    fmt_big,
    fmt_seconds,
    num,
    short_sha,
)
from assay.evaluate.report_html.metric import Metric, read_metrics

STATUSES = ("pass", "fail", "invalid", "skipped")


def badge(status: Any) -> str:
    """A coloured status label; an unknown status is shown (escaped) in neutral grey."""
    text = str(status)
    cls = text if text in STATUSES else "unknown"
    return f'<span class="badge {cls}">{e(text)}</span>'


def _reasons(items: Any) -> str:
    lines = [f"<li>{e(r)}</li>" for r in as_list(items)]
    return f"<ul class=reasons>{''.join(lines)}</ul>" if lines else ""


def _primary(gate: dict, checks: list[dict]) -> str:
    """The gate's primary metric, read with its check's metric (for its kind and direction)."""
    p = as_dict(gate.get("primary"))
    if not p:
        return ""
    check = next((c for c in checks if c.get("name") == p.get("check")), {})
    known = as_dict(as_dict(check.get("metrics")).get(str(p.get("metric"))))
    m = Metric.read(str(p.get("metric", "")), {**known, **p})
    return (
        f"<p class=primary>Primary metric <b>{e(p.get('check'))} · {e(p.get('metric'))}</b>: "
        f"candidate {e(m.value(m.candidate))} vs baseline {e(m.value(m.baseline))}, "
        f"Δ {e(m.delta_text)}{e(f' ({m.relative_text})' if m.relative_text else '')}, interval {e(m.interval_text)}</p>"
    )


def verdict(report: dict) -> str:
    """PASS / FAIL (or FORCED, when a release owner overrode the gate) with the gate's reasons."""
    gate = as_dict(report.get("gate"))
    passed = gate.get("passed") is True
    forced = as_dict(gate.get("forced"))
    word, cls = ("FORCED", "forced") if forced else (("PASS", "pass") if passed else ("FAIL", "fail"))
    lines = [f'<div class="verdict {cls}"><div class=word>{word}</div><div>']
    if forced:
        lines.append(
            f"<p>The gate said <b>{'PASS' if passed else 'FAIL'}</b>; promoted by force by "
            f"<b>{e(forced.get('by'))}</b>: {e(forced.get('reason'))}</p>"
        )
    reasons = _reasons(gate.get("reasons"))
    lines.append(
        reasons or f"<p>{'Every gate condition holds.' if passed else 'No reason was recorded.'}</p>"
    )
    lines.append(_primary(gate, dicts(report.get("checks"))) + "</div></div>")
    return "".join(lines)


def _row(label: str, value: str) -> str:
    return f"<tr><th>{label}</th><td>{value}</td></tr>"


def _model_rows(model: dict) -> list[str]:
    params = as_dict(model.get("params"))
    trainable, total = num(params.get("trainable")), num(params.get("total"))
    share = f" ({trainable / total * 100:.2g} %)" if trainable is not None and total else ""
    base = as_dict(model.get("base"))
    sha = base.get("sha256")
    rows = [
        _row(
            "model",
            f"<code>{e(model.get('id'))}</code> · {e(model.get('method'))} · "
            f"{e(fmt_big(trainable))} of {e(fmt_big(total))} parameters trained{e(share)}",
        ),
        _row(
            "base model", f'{e(base.get("name"))} · sha256 <code title="{e(sha)}">{e(short_sha(sha))}</code>'
        ),
    ]
    skipped = as_dict(model.get("review")).get("skipped_reason")
    if skipped:
        rows.append(_row("human review", f"<span class=warn>skipped: {e(skipped)}</span>"))
    return rows


def identity(report: dict) -> str:
    """What was judged, against what, when, and who signed it."""
    baseline, runtime = as_dict(report.get("baseline")), as_dict(report.get("runtime"))
    sig = as_dict(report.get("signature"))
    base_id = f" · <code>{e(baseline.get('id'))}</code>" if baseline.get("id") else ""
    rows = [
        _row(
            "report",
            f"<code>{e(report.get('report') or 'not yet assigned')}</code> · created {e(report.get('created_at'))}",
        ),
        *_model_rows(as_dict(report.get("model"))),
        _row(
            "baseline",
            f"{e(baseline.get('label') or baseline.get('kind') or DASH)} ({e(baseline.get('kind'))}){base_id}",
        ),
        _row(
            "signature",
            f"Ed25519 key <code>{e(sig.get('keyid'))}</code>" if sig else "<span class=warn>unsigned</span>",
        ),
        _row(
            "run",
            f"{e(runtime.get('device') or DASH)} · {e(runtime.get('dtype') or DASH)} · "
            f"{e(fmt_seconds(runtime.get('seconds')))}",
        ),
    ]
    return f"<table class=ident>{''.join(rows)}</table>"


def check_anchor(index: int) -> str:
    """Page-made ids (never data) for links from the table to a check's sections."""
    return f"check-{index}"


def _metric_cells(m: Metric | None) -> str:
    if m is None:
        return "<td colspan=6 class=muted>no metrics</td>"
    rel = f"<div class=muted>{e(m.relative_text)}</div>" if m.relative_text else ""
    return (
        f"<td>{e(m.name)}</td><td class=n>{e(m.value(m.candidate))}</td><td class=n>{e(m.value(m.baseline))}</td>"
        f'<td class="n {m.tone}">{e(m.delta_text)}{rel}</td><td class=n>{e(m.interval_text)}</td>'
        f"<td class=n>{e(DASH if m.n is None else f'{m.n:,.0f}')}</td>"
    )


def _check_rows(index: int, check: dict, seconds: Any) -> str:
    metrics: list[Metric | None] = list(read_metrics(check.get("metrics"))) or [None]
    span = f" rowspan={len(metrics)}" if len(metrics) > 1 else ""
    notes = "".join(f"<li class=muted>{e(n)}</li>" for n in as_list(check.get("notes")))
    head = (
        f'<td{span}><a href="#{check_anchor(index)}"><b>{e(check.get("name"))}</b></a>'
        f"<div class=muted>v{e(check.get('version'))} · {e(str(check.get('direction')).replace('_', ' '))}</div></td>"
        f"<td{span}>{badge(check.get('status'))}</td>"
    )
    tail = f"<td{span} class=n>{e(fmt_seconds(seconds))}</td><td{span}>{_reasons(check.get('reasons'))}"
    tail += f"<ul class=reasons>{notes}</ul></td>" if notes else "</td>"
    rows = [f"<tr>{head}{_metric_cells(metrics[0])}{tail}</tr>"]
    rows += [f"<tr>{_metric_cells(m)}</tr>" for m in metrics[1:]]
    return "".join(rows)


def checks_table(checks: list[dict], runtime: dict) -> str:
    """One row per metric of every check: both sides, the delta and its interval, and the gate's reasons."""
    per_check = as_dict(runtime.get("per_check"))
    head = (
        "<tr><th>check</th><th>status</th><th>metric</th><th>candidate</th><th>baseline</th>"
        "<th>Δ</th><th>interval</th><th>n</th><th>time</th><th>reasons</th></tr>"
    )
    body = "".join(_check_rows(i, c, per_check.get(str(c.get("name")))) for i, c in enumerate(checks))
    return f"<table class=checks>{head}{body}</table>" if checks else "<p class=muted>No checks ran.</p>"
