"""The tabular sections: memorised rows, sample generations, bias examples, probes, contamination."""

from __future__ import annotations

from typing import Any

from assay.evaluate.report_html.fmt import (
    DASH,
    as_dict,
    dicts,
    e,
    fmt_count,
    fmt_value,
    is_fraction,
    num,
    plain_text,
)
from assay.evaluate.report_html.summary import badge

TEXT_CHARS = 1500  # longer generations are cut on the page (the JSON report keeps them whole)


def clip(value: Any, limit: int = TEXT_CHARS) -> str:
    """Escaped text, cut at `limit` characters with a note of how much was left out."""
    text = plain_text("" if value is None else value)
    if len(text) <= limit:
        return e(text)
    return f"{e(text[:limit])}<span class=muted>… ({len(text) - limit:,} more characters)</span>"


def pre(value: Any) -> str:
    return f"<pre>{clip(value)}</pre>"


def pct(value: Any) -> str:
    v = num(value)
    return DASH if v is None else f"{v * 100:.1f} %"


def _heading(check: dict) -> str:
    return f"<h3>{e(check.get('name'))} {badge(check.get('status'))}</h3>"


def generic_table(rows: list[dict]) -> str:
    """Any list of flat records: one column per key, in order of first appearance."""
    keys: list[str] = []
    for row in rows:
        keys += [str(k) for k in row if str(k) not in keys]
    head = "".join(f"<th>{e(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{clip(r.get(k), 400)}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table>{head and f'<tr>{head}</tr>'}{body}</table>" if rows else ""


# ---- memorisation --------------------------------------------------------------------------------


def _rates(rates: dict) -> str:
    rows = "".join(
        f"<tr><td>{label}</td><td class=n>{pct(as_dict(rates.get(key)).get('exact'))}</td>"
        f"<td class=n>{pct(as_dict(rates.get(key)).get('near'))}</td></tr>"
        for key, label in (("train", "training rows"), ("held_out", "held-out rows"))
    )
    return f"<table><tr><th>rows</th><th>exact continuation</th><th>near continuation</th></tr>{rows}</table>"


def _worst_row(r: dict) -> str:
    exact = r.get("exact")
    match = "<b class=bad>exact</b>" if exact is True else ("not exact" if exact is False else DASH)
    return (
        f"<tr><td><code>{e(r.get('id'))}</code><div class=muted>{e(r.get('source'))}:{e(r.get('source_line'))}</div>"
        f"<div>{e(r.get('split'))}</div></td><td>{pre(r.get('prefix'))}</td><td>{pre(r.get('expected'))}</td>"
        f"<td>{pre(r.get('generated'))}</td><td class=n>{match}<div>{pct(r.get('similarity'))} similar</div></td></tr>"
    )


def memorisation(check: dict) -> str:
    details = as_dict(check.get("details"))
    worst, rates = dicts(details.get("worst")), as_dict(details.get("rates"))
    if not worst and not rates:
        return ""
    table = ""
    if worst:
        head = "<tr><th>row (source:line, split)</th><th>prompted with</th><th>true continuation</th><th>generated</th><th>match</th></tr>"
        table = f"<table class=rows>{head}{''.join(_worst_row(r) for r in worst)}</table>"
    return _heading(check) + (_rates(rates) if rates else "") + table


# ---- task samples ---------------------------------------------------------------------------------


def _scores(scores: dict) -> str:
    """Per-sample scores on one line: metric candidate / baseline."""
    items = []
    for metric, sides in scores.items():
        s = as_dict(sides)
        fraction = is_fraction(metric, s.get("candidate"), s.get("baseline"))
        cand, base = (fmt_value(metric, s.get(k), fraction=fraction) for k in ("candidate", "baseline"))
        items.append(f"<span>{e(metric)} <b>{e(cand)}</b> / {e(base)}</span>")
    return (
        f"<span class=scores>{''.join(items)}<span class=muted>candidate / baseline</span></span>"
        if items
        else ""
    )


def _sample(s: dict) -> str:
    return (
        f"<div class=sample><div class=shead><code>{e(s.get('id'))}</code>{_scores(as_dict(s.get('scores')))}</div>"
        f"<div class=pair><div><h4>prompt</h4>{pre(s.get('prompt'))}</div><div><h4>reference</h4>{pre(s.get('reference'))}</div></div>"
        f"<div class=pair><div class=cand><h4>candidate</h4>{pre(s.get('candidate'))}</div>"
        f"<div class=base><h4>baseline</h4>{pre(s.get('baseline'))}</div></div></div>"
    )


def samples(check: dict) -> str:
    details = as_dict(check.get("details"))
    items = dicts(details.get("samples"))
    ex = as_dict(details.get("extraction"))
    if not items:
        return ""
    note = (
        (
            f"<p class=muted>Answer extraction: {e(ex.get('kind'))}; no answer found in "
            f"{e(fmt_count(ex.get('missing_candidate')))} candidate and {e(fmt_count(ex.get('missing_baseline')))} baseline outputs.</p>"
        )
        if ex
        else ""
    )
    return _heading(check) + note + "".join(_sample(s) for s in items)


# ---- bias examples, probes, contamination ------------------------------------------------------------


def _prefers(value: Any) -> str:
    cls = "bad" if value == "more" else ""
    return f'<span class="{cls}">{e(value)}</span>' if value is not None else DASH


def bias_examples(check: dict) -> str:
    details = as_dict(check.get("details"))
    rows = []
    for x in dicts(details.get("examples")):
        changed = " class=changed" if x.get("candidate_prefers") != x.get("baseline_prefers") else ""
        rows.append(
            f"<tr{changed}><td>{e(x.get('bias_type'))}</td><td>{clip(x.get('sent_more'), 400)}</td>"
            f"<td>{clip(x.get('sent_less'), 400)}</td><td>{_prefers(x.get('candidate_prefers'))}</td>"
            f"<td>{_prefers(x.get('baseline_prefers'))}</td></tr>"
        )
    out = ""
    if rows:
        head = "<tr><th>bias type</th><th>more stereotyping</th><th>less stereotyping</th><th>candidate prefers</th><th>baseline prefers</th></tr>"
        out = f"<h4>Paired sentences (highlighted: the preference changed)</h4><table>{head}{''.join(rows)}</table>"
    bbq = dicts(details.get("bbq_examples"))
    return out + (f"<h4>Question answering under ambiguity</h4>{generic_table(bbq)}" if bbq else "")


def forgetting(check: dict) -> str:
    files = dicts(as_dict(check.get("details")).get("files"))
    rows = "".join(
        f"<tr><td>{e(f.get('name'))}</td><td>{e(f.get('kind'))}</td><td class=n>{e(fmt_count(f.get('n')))}</td></tr>"
        for f in files
    )
    return (
        _heading(check) + f"<table><tr><th>probe file</th><th>kind</th><th>items</th></tr>{rows}</table>"
        if files
        else ""
    )


def _overlap_examples(examples: list[dict]) -> str:
    rows = "".join(
        f"<tr><td>{clip(x.get('eval_row'), 400)}</td><td>{clip(x.get('train_row'), 400)}</td>"
        f"<td><code>{clip(x.get('ngram'), 200)}</code></td></tr>"
        for x in examples
    )
    return (
        f"<tr><td colspan=5 class=nested><table><tr><th>eval row</th><th>training row</th><th>shared n-gram</th></tr>{rows}</table></td></tr>"
        if rows
        else ""
    )


def contamination(check: dict) -> str:
    sets = dicts(as_dict(check.get("details")).get("sets"))
    rows = []
    for s in sets:
        state = badge("invalid") if s.get("invalid") is True else '<span class="badge pass">clean</span>'
        rows.append(
            f"<tr><td>{e(s.get('name'))}</td><td class=n>{e(fmt_count(s.get('rows')))}</td>"
            f"<td class=n>{e(fmt_count(s.get('overlapping_rows')))}</td><td class=n>{pct(s.get('share'))}</td><td>{state}</td></tr>"
        )
        rows.append(_overlap_examples(dicts(s.get("examples"))))
    head = "<tr><th>eval set</th><th>rows</th><th>overlapping rows</th><th>share</th><th>verdict</th></tr>"
    return _heading(check) + f"<table class=rows>{head}{''.join(rows)}</table>" if sets else ""
