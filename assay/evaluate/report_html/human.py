"""The report's human-evaluation section: win / tie / loss with intervals, position bias, agreement,
categories, and the most disputed records side by side with what the raters said."""

from __future__ import annotations

from typing import Any

from assay.evaluate.report_html.fmt import DASH, as_dict, dicts, e, num
from assay.evaluate.report_html.tables import clip


def _pct(value: Any) -> str:
    v = num(value)
    return DASH if v is None else f"{v * 100:.1f} %"


def _interval(entry: dict) -> str:
    lo, hi = num(entry.get("low")), num(entry.get("high"))
    return DASH if lo is None or hi is None else f"[{lo * 100:.1f}, {hi * 100:.1f}] %"


def _rate_rows(human: dict) -> str:
    rows = [("candidate wins", as_dict(as_dict(human.get("rates")).get("win"))),
            ("ties", as_dict(as_dict(human.get("rates")).get("tie"))),
            ("candidate loses", as_dict(as_dict(human.get("rates")).get("loss"))),
            ("win rate, ties as half", as_dict(human.get("win_rate"))),
            ("answer A chosen (position bias; 50 % is none)", as_dict(as_dict(human.get("position_bias")).get("chose_a")))]
    return "".join(f"<tr><td>{e(label)}</td><td>{_pct(r.get('estimate'))}</td><td>{_interval(r)}</td><td>{e(r.get('n', DASH))}</td></tr>"
                   for label, r in rows)


def _per_rater(human: dict) -> str:
    per = as_dict(as_dict(human.get("position_bias")).get("per_rater"))
    return "".join(f"<tr><td>{e(name)}</td><td>{_pct(as_dict(r).get('estimate'))}</td><td>{_interval(as_dict(r))}</td>"
                   f"<td>{e(as_dict(r).get('n', DASH))}</td></tr>" for name, r in per.items())


def _categories(human: dict) -> str:
    cats = as_dict(human.get("per_category"))
    return "".join(f"<tr><td>{e(name)}</td><td>{_pct(as_dict(as_dict(c).get('win_rate')).get('estimate'))}</td>"
                   f"<td>{_interval(as_dict(as_dict(c).get('win_rate')))}</td><td>{e(as_dict(c).get('votes', DASH))}</td></tr>"
                   for name, c in cats.items())


def _disputed(human: dict) -> str:
    rows = []
    for d in dicts(human.get("disputed")):
        votes = "<br>".join(f"{e(r)}: {e(v)}" for r, v in as_dict(d.get("votes")).items())
        comments = "<br>".join(f"{e(r)}: “{e(c)}”" for r, c in as_dict(d.get("comments")).items()) or DASH
        rows.append(f"<tr><td>{clip(d.get('prompt'))}</td><td>{clip(d.get('candidate'))}</td><td>{clip(d.get('baseline'))}</td>"
                    f"<td>{votes}<div class=muted>candidate shown as {e('A' if d.get('shown_as_a') == 'candidate' else 'B')}</div></td>"
                    f"<td>{comments}</td></tr>")
    if not rows:
        return ""
    head = "<tr><th>prompt</th><th>candidate</th><th>baseline</th><th>votes</th><th>comments</th></tr>"
    return f"<h3>Most disputed records</h3><table>{head}{''.join(rows)}</table>"


def human(report: dict) -> str:
    """The section, or nothing when the report carries no human comparison."""
    h = as_dict(report.get("human"))
    if not h:
        return ""
    agreement = as_dict(h.get("agreement"))
    alpha = num(agreement.get("krippendorff_alpha"))
    head = (f"<p>{e(h.get('votes'))} votes by {e(len(h.get('raters') or []))} raters on {e(h.get('records'))} records "
            f"(Argilla dataset {e(h.get('dataset'))}); agreement: Krippendorff α "
            f"{DASH if alpha is None else f'{alpha:.3f}'}; refers to automatic report {e(h.get('automatic_report') or DASH)}.</p>")
    table = "<table><tr><th></th><th>share</th><th>95 % interval</th><th>n</th></tr>" + _rate_rows(h) + "</table>"
    raters = f"<h3>Position bias per rater</h3><table><tr><th>rater</th><th>chose A</th><th>interval</th><th>n</th></tr>{_per_rater(h)}</table>"
    cats = _categories(h)
    cats_html = f"<h3>Per category</h3><table><tr><th>category</th><th>win rate</th><th>interval</th><th>votes</th></tr>{cats}</table>" if cats else ""
    return f"<section><h2>Human evaluation (blind, side by side)</h2>{head}{table}{raters}{cats_html}{_disputed(h)}</section>"
