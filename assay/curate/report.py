"""The curation report: counts per step and reason, examples, distributions, duplicate clusters.

One dict feeds every view: the terminal table, `--json`, and a self-contained HTML page in
which every piece of data text is escaped (rows come from untrusted files).
"""

from __future__ import annotations

import html
import json

import numpy as np
import polars as pl

from assay.schema import ID, SPLIT, content_columns, content_text

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 300
BINS = 20


def _text(schema: pl.Schema) -> pl.Expr:
    return content_text(content_columns(schema))


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    """Versions can be larger than memory: queries read only the columns they use, streaming."""
    return lf.collect(engine="streaming")


def _examples(rejects: pl.LazyFrame) -> dict[str, list[dict]]:
    """A few rejected rows per (step, reason), with their detail and what they duplicated."""
    schema = rejects.collect_schema()
    first = pl.int_range(pl.len()).over("step", "reason") < EXAMPLES_PER_REASON
    frame = _collect(rejects.filter(first).select(
        "step",
        "reason",
        ID,
        *(pl.col(c) for c in ("detail", "duplicate_of", "source", "source_line") if c in schema),
        _text(schema).str.slice(0, EXAMPLE_CHARS).alias("text"),
    ))
    out: dict[str, list[dict]] = {}
    for (step, reason), group in frame.group_by("step", "reason", maintain_order=True):
        out[f"{step}: {reason}"] = group.to_dicts()
    return out


def _histogram(values: np.ndarray, bins: int = BINS) -> dict:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(values, bins=bins)
    return {
        "edges": [round(float(e), 4) for e in edges],
        "counts": counts.tolist(),
        "min": float(values.min()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }


def _distributions(data: pl.LazyFrame) -> dict[str, dict]:
    """A histogram per signal, one column in memory at a time."""
    schema = data.collect_schema()
    columns = {"chars": _text(schema).str.len_chars()}
    columns |= {c: pl.col(c) for c in sorted(c for c in schema if c.startswith("q_") and schema[c].is_numeric())}
    return {
        name: _histogram(_collect(data.select(expr.cast(pl.Float64).alias(name))).to_series().to_numpy())
        for name, expr in columns.items()
    }


def _clusters(rejects: pl.LazyFrame) -> dict:
    """Sizes of duplicate clusters (a kept row plus the rows that copied it), as size → count."""
    if "duplicate_of" not in rejects.collect_schema():
        return {"clusters": 0, "sizes": {}}
    sizes = _collect(rejects.drop_nulls("duplicate_of").group_by("duplicate_of").len()).get_column("len") + 1
    if sizes.len() == 0:
        return {"clusters": 0, "sizes": {}}
    hist = sizes.value_counts().sort(sizes.name)
    return {
        "clusters": sizes.len(),
        "largest": int(sizes.max() or 0),
        "sizes": {str(k): int(v) for k, v in hist.iter_rows()},
    }


def build_report(version) -> dict:
    """Everything a curator needs to trust a version, as plain JSON-able data."""
    m = version.manifest
    data, rejects, quarantine = version.data(), version.rejects(), version.quarantine()
    schema = data.collect_schema()
    pii_columns = [c for c in schema if c.startswith("pii_") and schema[c].is_numeric()]
    pii = _collect(data.select(pl.col(c).cast(pl.Int64).sum() for c in pii_columns)).to_dicts()[0] if pii_columns else {}
    splits = _collect(data.group_by(SPLIT).len().sort(SPLIT)) if SPLIT in schema else None
    return {
        "version": version.id,
        "kind": m["kind"],
        "created_at": m["created_at"],
        "config_hash": m["config_hash"],
        "counts": m.get("counts", {}),
        "examples": _examples(rejects),
        "quarantine_examples": _collect(
            quarantine.head(EXAMPLES_PER_REASON * 2).with_columns(pl.col("raw").str.slice(0, EXAMPLE_CHARS))
        ).to_dicts(),
        "distributions": _distributions(data),
        "duplicates": _clusters(rejects),
        "splits": dict(splits.iter_rows()) if splits is not None else {},
        "pii_kept_rows": {c: int(v or 0) for c, v in pii.items()},
    }


# ---- HTML ---------------------------------------------------------------------------------

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2433}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #dde;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}pre{white-space:pre-wrap;margin:0;max-width:650px;font-size:12px}
.muted{color:#667}.grid{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #dde;padding:.5rem;border-radius:6px}"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _steps_html(counts: dict) -> str:
    head = "<tr><th>step</th><th>in</th><th>out</th><th>changed</th><th>removed (reason: rows)</th></tr>"
    rows = [
        f"<tr><td>read</td><td class=n>{counts.get('input_rows', 0):,}</td><td class=n>{counts.get('read', 0):,}</td>"
        f"<td></td><td>quarantined: {counts.get('quarantined', 0):,}</td></tr>"
    ]
    for s in counts.get("steps", []):
        removed = ", ".join(f"{_e(r)}: {n:,}" for r, n in s["removed"].items())
        rows.append(
            f"<tr><td>{_e(s['step'])}</td><td class=n>{s['in']:,}</td><td class=n>{s['out']:,}</td>"
            f"<td class=n>{s.get('changed', 0):,}</td><td>{removed}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _examples_html(examples: dict[str, list[dict]]) -> str:
    if not examples:
        return "<p class=muted>No rows were removed.</p>"
    parts = []
    for key, rows in examples.items():
        body = "".join(
            f"<tr><td>{_e(r.get('source'))}:{_e(r.get('source_line'))}</td><td>{_e(r.get('detail') or '')}"
            f"{'<br>duplicate of ' + _e(r['duplicate_of']) if r.get('duplicate_of') else ''}</td><td><pre>{_e(r['text'])}</pre></td></tr>"
            for r in rows
        )
        parts.append(
            f"<h3>{_e(key)}</h3><table><tr><th>where</th><th>why</th><th>text</th></tr>{body}</table>"
        )
    return "".join(parts)


def _svg_hist(name: str, hist: dict) -> str:
    counts = hist.get("counts") or []
    if not counts:
        return ""
    w, h, top = 300, 90, max(counts) or 1
    bw = w / len(counts)
    bars = "".join(
        f'<rect x="{i * bw:.1f}" y="{h - c / top * h:.1f}" width="{bw - 1:.1f}" height="{c / top * h:.1f}" fill="#4a6fa5"><title>{c}</title></rect>'
        for i, c in enumerate(counts)
    )
    caption = f"{_e(name)} — min {hist['min']:.3g}, median {hist['median']:.3g}, max {hist['max']:.3g}"
    return f'<div class=card><svg width="{w}" height="{h}" role="img" aria-label="{_e(name)}">{bars}</svg><div class=muted>{caption}</div></div>'


def render_html(report: dict) -> str:
    """A self-contained page (no scripts, no external assets)."""
    q = report.get("quarantine_examples") or []
    quarantine = "".join(
        f"<tr><td>{_e(r['source'])}:{_e(r['source_line'])}</td><td>{_e(r['error'])}</td><td><pre>{_e(r['raw'])}</pre></td></tr>"
        for r in q
    )
    dup = report["duplicates"]
    sizes = ", ".join(f"size {_e(k)}: {v}" for k, v in dup.get("sizes", {}).items()) or "none"
    splits = ", ".join(f"{_e(k)}: {v:,}" for k, v in report.get("splits", {}).items()) or "not split"
    hists = "".join(_svg_hist(k, v) for k, v in report["distributions"].items())
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>assay curation report {_e(report["version"])}</title>
<style>{_CSS}</style></head><body>
<h1>Curation report <code>{_e(report["version"])}</code></h1>
<p class=muted>kind {_e(report["kind"])} · created {_e(report["created_at"])} · config {_e(report["config_hash"][:12])}</p>
<h2>Rows per step</h2>{_steps_html(report["counts"])}
<p><b>kept {report["counts"].get("kept", 0):,}</b> · rejected {report["counts"].get("rejected", 0):,} · splits: {splits}</p>
<h2>Why rows were removed (examples)</h2>{_examples_html(report["examples"])}
<h2>Quarantined input</h2>{"<table><tr><th>where</th><th>error</th><th>raw</th></tr>" + quarantine + "</table>" if q else "<p class=muted>None.</p>"}
<h2>Distributions of kept rows</h2><div class=grid>{hists}</div>
<h2>Duplicate clusters</h2><p>{dup.get("clusters", 0):,} clusters with removed copies; {sizes}</p>
<h2>PII left in kept rows</h2><p>{_e(json.dumps(report.get("pii_kept_rows") or {}))}</p>
</body></html>
"""


def write_report(ws, version) -> dict:
    """Build the report and store JSON + HTML beside (not inside) the immutable version."""
    from assay.store.atomic import write_bytes_atomic

    report = build_report(version)
    folder = ws.root / "derived" / "curation" / version.id
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / "report.json", json.dumps(report, indent=2, default=str).encode())
    write_bytes_atomic(folder / "report.html", render_html(report).encode())
    return {**report, "html": str(folder / "report.html"), "json": str(folder / "report.json")}
