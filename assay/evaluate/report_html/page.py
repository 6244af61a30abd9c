"""The whole page: verdict first, then the checks, plots, examples and hashes. No scripts, no assets."""

from __future__ import annotations

from collections.abc import Callable

from assay.evaluate.report_html import human, plots, provenance, summary, tables
from assay.evaluate.report_html.fmt import as_dict, dicts, e

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2433;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde}
h3{font-size:1rem;margin:1.4rem 0 .4rem}h4{font-size:.85rem;margin:.6rem 0 .2rem;color:#475467}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #dde;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f7fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font-size:12px}code{font-size:12px;overflow-wrap:anywhere}
.muted{color:#667085;font-size:12px;font-weight:400}.warn{color:#b54708;font-weight:600}
.good{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
.verdict{display:flex;gap:1.5rem;align-items:flex-start;border-radius:8px;padding:1rem 1.4rem;margin:1rem 0;border:2px solid}
.verdict .word{font-size:2.6rem;font-weight:800;letter-spacing:.04em;line-height:1}
.verdict.pass{background:#ecf8ef;border-color:#2e7d32}.verdict.pass .word{color:#2e7d32}
.verdict.fail{background:#fdeeee;border-color:#c62828}.verdict.fail .word{color:#c62828}
.verdict.forced{background:#fff6e6;border-color:#b54708}.verdict.forced .word{color:#b54708}
.verdict p,.verdict ul{margin:.2rem 0}.reasons{margin:.2rem 0;padding-left:1.1rem}
.badge{display:inline-block;border-radius:4px;padding:0 .45rem;font-size:12px;font-weight:700;color:#fff;background:#667085;vertical-align:middle}
.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.invalid{background:#7a2e9e}.badge.skipped{background:#98a2b3}
table.ident th{width:9rem}table.checks td{font-size:13px}table.checks td:last-child{max-width:300px}
table.rows td{max-width:260px}table.hashes code{font-size:11px}
figure{margin:.6rem 0}figcaption{font-weight:600;font-size:13px}svg{max-width:100%;height:auto}
.sample{border:1px solid #dde;border-radius:6px;padding:.6rem;margin:.8rem 0;break-inside:avoid}
.shead{display:flex;justify-content:space-between;gap:1rem;align-items:baseline}.scores{font-size:12px;display:flex;gap:1rem}
td.nested{padding-left:2rem}td.nested table{width:100%;margin:0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.8rem;margin-top:.4rem}
.pair>div{background:#f8f9fb;border-radius:4px;padding:.3rem .5rem}.pair>.cand{background:#eef3fb}.pair>.base{background:#f6f6f6}
tr.changed td{background:#fff6e6}details{margin:.6rem 0}summary{cursor:pointer;font-weight:600}
@media print{body{margin:0;max-width:none;font-size:12px}a{color:inherit;text-decoration:none}
*{print-color-adjust:exact;-webkit-print-color-adjust:exact}details::details-content{content-visibility:visible;display:block}
section,figure,tr{break-inside:avoid}h2,h3{break-after:avoid}}"""

# Check-specific sections in the order a release owner reads them; each renders what it finds in details.
_EXAMPLE_SECTIONS: list[tuple[str, Callable[[dict], str]]] = [
    ("Memorised rows", tables.memorisation),
    ("Sample generations: candidate and baseline side by side", tables.samples),
    ("Forgetting probes", tables.forgetting),
    ("Contamination of eval sets by training data", tables.contamination),
]


def _per_check(title: str, render: Callable[[dict], str], checks: list[dict]) -> str:
    body = "".join(render(c) for c in checks)
    return f"<section><h2>{e(title)}</h2>{body}</section>" if body else ""


def _head(report: dict) -> str:
    model_id = as_dict(report.get("model")).get("id")
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>assay evaluation {e(model_id)} {e(report.get('report') or '')}</title><style>{CSS}</style></head>"
    )


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page: no scripts, no network, every data string escaped.

    >>> page = render_html({"gate": {"passed": True, "reasons": []}, "checks": []})
    >>> "PASS" in page and "<script" not in page
    True
    """
    checks = dicts(report.get("checks"))
    model = as_dict(report.get("model"))
    bias = {i: tables.bias_examples(c) for i, c in enumerate(checks)}
    parts = [
        _head(report),
        f"<body><h1>Evaluation of <code>{e(model.get('id'))}</code></h1>",
        summary.verdict(report),
        summary.identity(report),
        "<section><h2>Checks</h2>"
        + summary.checks_table(checks, as_dict(report.get("runtime")))
        + "</section>",
        plots.loss_section(checks),
        plots.deltas_section(checks),
        plots.category_section(checks, bias),
        *(_per_check(title, render, checks) for title, render in _EXAMPLE_SECTIONS),
        human.human(report),
        "<section><h2>Provenance</h2>"
        + provenance.hashes(report)
        + provenance.settings(report)
        + "</section>",
        f"<p class=muted>{e(report.get('schema') or '')}</p></body></html>\n",
    ]
    return "\n".join(p for p in parts if p)
