"""What the report judged, by hash: model files, datasets, suite, policy and probe files (collapsed)."""

from __future__ import annotations

import json

from assay.evaluate.report_html.fmt import DASH, as_dict, dicts, e
from assay.evaluate.report_html.tables import clip


def _row(what: str, name: object, sha: object, note: object = "") -> str:
    extra = f"<div class=muted>{e(note)}</div>" if note else ""
    return f"<tr><td>{e(what)}</td><td>{e(name)}{extra}</td><td><code>{e(sha or DASH)}</code></td></tr>"


def _model_rows(model: dict) -> list[str]:
    base = as_dict(model.get("base"))
    rows = [_row("base model", base.get("name"), base.get("sha256"), base.get("source"))]
    rows += [_row("model file", path, sha) for path, sha in as_dict(model.get("files")).items()]
    for ds, info in as_dict(model.get("datasets")).items():
        info = as_dict(info)
        snapshot = info.get("responses_sha256")
        rows.append(
            _row(
                "dataset",
                ds,
                snapshot,
                f"{info.get('kind') or ''}{' · label snapshot hash' if snapshot else ''}",
            )
        )
    return rows


def hashes(report: dict) -> str:
    """Every sha256 the report vouches for, in a <details> that opens on click (and prints open)."""
    suite, policy = as_dict(report.get("suite")), as_dict(report.get("policy"))
    rows = _model_rows(as_dict(report.get("model")))
    rows += [
        _row("suite", suite.get("path"), suite.get("sha256")),
        _row("policy", policy.get("path"), policy.get("sha256")),
    ]
    for check in dicts(report.get("checks")):
        for name, sha in as_dict(check.get("data")).items():
            rows.append(_row(f"probe file ({check.get('name')})", name, sha))
    sig = as_dict(report.get("signature"))
    if sig:
        rows.append(_row("signature", sig.get("envelope"), sig.get("keyid"), "DSSE envelope · key id"))
    table = f"<table class=hashes><tr><th>what</th><th>name</th><th>sha256</th></tr>{''.join(rows)}</table>"
    return f"<details><summary>Hashes: model files, datasets, suite, policy and probe files</summary>{table}</details>"


def settings(report: dict) -> str:
    """The suite's settings per check and the gate policy's values, as the run resolved them."""
    suite, policy = as_dict(report.get("suite")), as_dict(report.get("policy"))
    body = (
        f"<h4>suite {e(suite.get('path'))}</h4><pre>{clip(_json(suite.get('checks')), 20_000)}</pre>"
        f"<h4>policy {e(policy.get('path'))}</h4><pre>{clip(_json(policy.get('values')), 20_000)}</pre>"
    )
    return f"<details><summary>Suite settings and gate policy</summary>{body}</details>"


def _json(value: object) -> str:
    return json.dumps(
        value if value is not None else {}, indent=2, ensure_ascii=False, sort_keys=True, default=str
    )
