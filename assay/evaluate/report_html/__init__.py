"""The evaluation report as a self-contained HTML page for the release owner.

`render_html(report)` takes the report dict (schema "assay.eval-report/1") and returns the page: the
verdict first, then the checks, loss curves, metric deltas with intervals, results per category,
memorised rows, sample generations side by side and the hashes. Plots are inline SVG built here;
the page has no scripts and loads nothing, and every piece of data text is escaped. It is pure: no
file or network access, so callers decide where the page goes.

    from assay.evaluate.report_html import render_html
    path.write_text(render_html(report), encoding="utf-8")
"""

from assay.evaluate.report_html.page import render_html

__all__ = ["render_html"]
