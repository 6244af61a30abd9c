"""The batch's summary: every stage with its version, and the candidates side by side.

Written to `<workspace>/batches/<name>/summary.html` (self-contained, every data string escaped) and
returned as rows for the terminal: method, trainable parameters, wall time, peak memory, the task
delta with its interval, forgetting (perplexity ratio), bias (pct_stereotype delta), gate verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.evaluate.report_html.fmt import e
from assay.evaluate.report_html.page import CSS
from assay.store.atomic import write_bytes_atomic

COLUMNS = ("candidate", "method", "trainable params", "wall time", "peak memory", "task (primary) Δ [95% CI]",
           "perplexity ratio", "pct_stereotype Δ", "gate", "model", "report")


def candidate_rows(state: dict[str, Any]) -> list[dict[str, str]]:
    """One row per candidate, formatted for people (terminal table and HTML)."""
    rows = []
    for name, cand in state.get("candidates", {}).items():
        train, ev = cand.get("train", {}), cand.get("eval", {})
        checks = ev.get("checks", {})
        rows.append({
            "candidate": name,
            "method": str(train.get("method") or "-"),
            "trainable params": f"{train['trainable_params']:,}" if train.get("trainable_params") else "-",
            "wall time": f"{train['seconds']:.0f} s" if train.get("seconds") is not None else "-",
            "peak memory": f"{train['peak_rss_mb']:,.0f} MB" if train.get("peak_rss_mb") else "-",
            "task (primary) Δ [95% CI]": _delta(ev.get("primary") or {}),
            "perplexity ratio": _metric(checks, "forgetting", "perplexity_ratio", "delta", "{:.3f}x"),
            "pct_stereotype Δ": _metric(checks, "bias", "pct_stereotype", "delta", "{:+.1f} pts"),
            "gate": _gate(train, ev),
            "model": str(train.get("model") or "-"),
            "report": str(ev.get("report") or "-"),
        })
    return rows


def _delta(primary: dict[str, Any]) -> str:
    if primary.get("delta") is None:
        return "-"
    name = primary.get("metric", "")
    return f"{name} {primary['delta']:+.3f} [{primary['ci_low']:+.3f}, {primary['ci_high']:+.3f}]"


def _metric(checks: dict[str, Any], check: str, metric: str, key: str, fmt: str) -> str:
    value = checks.get(check, {}).get("metrics", {}).get(metric, {}).get(key)
    return fmt.format(value) if value is not None else "-"


def _gate(train: dict[str, Any], ev: dict[str, Any]) -> str:
    if train.get("error"):
        return "training failed"
    if "passed" not in ev:
        return "not evaluated"
    return "PASS" if ev["passed"] else "FAIL"


def write_summary(ws: Any, batch: Any, state: Any) -> Path:
    path = state.path.parent / "summary.html"
    write_bytes_atomic(path, render(batch.name, state.data).encode())
    return path


def render(name: str, data: dict[str, Any]) -> str:
    stages = "".join(
        f"<tr><td>{e(stage)}</td><td>{e(info.get('version') or info.get('model') or info.get('mode') or '')}</td>"
        f"<td>{e(info.get('seconds', ''))}</td><td>{e(info.get('reason') or info.get('waiting_for') or info.get('why') or '')}</td></tr>"
        for stage, info in data.get("stages", {}).items()
    )
    rows = candidate_rows(data)
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(r[c])}</td>" for c in COLUMNS) + "</tr>" for r in rows)
    failures = "".join(f"<li>{e(n)}: {e(c['train']['error'])}</li>" for n, c in data.get("candidates", {}).items()
                       if c.get("train", {}).get("error"))
    reasons = "".join(f"<li>{e(n)}: {e(r)}</li>" for n, c in data.get("candidates", {}).items()
                      for r in c.get("eval", {}).get("reasons", []))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>assay batch {e(name)}</title><style>{CSS}</style></head>"
            f"<body><h1>batch {e(name)}</h1><h2>stages</h2><table><tr><th>stage</th><th>result</th><th>seconds</th><th>note</th></tr>"
            f"{stages}</table><h2>candidates</h2><table><tr>{head}</tr>{body}</table>"
            + (f"<h2>training failures</h2><ul>{failures}</ul>" if failures else "")
            + (f"<h2>gate reasons</h2><ul>{reasons}</ul>" if reasons else "")
            + "</body></html>")
