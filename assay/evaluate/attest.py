"""Reports as signed, checkable records: assemble, sign, publish, and verify them offline.

    report = publish(ws, model, body)                 # report.json + report.html + report.dsse.json
    problems = verify(ws, "rp-1a2b3c4d5e6f")          # [] when signature, subjects and hashes match

The signature is a DSSE envelope around an in-toto Statement whose subjects are the model version's
weight files and whose predicate is the report (see `assay.evaluate.signing`). `verify` checks the
signature with the workspace's public key (or one given), that the signed report is the stored one,
that the stored files match their manifest, and that the model's files are still the ones judged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay.errors import NotFoundError
from assay.evaluate import signing
from assay.evaluate.signing_keys import key_id, load_or_create_signing_key, load_public_key, public_key_pem
from assay.store.reports import ENVELOPE, REPORT
from assay.store.versions import verify_dir


def signing_key(ws: Any) -> Any:
    return load_or_create_signing_key(ws.layout.signing_key)


def public_key(ws: Any) -> str:
    """The workspace's public key as PEM (to give to whoever verifies reports elsewhere)."""
    return public_key_pem(signing_key(ws))


def publish(ws: Any, model: Any, body: dict[str, Any], *, baseline: str | None) -> Any:
    """Sign the report over the model's weight files and store it as a report version."""
    from assay.evaluate.report_html import render_html

    key = signing_key(ws)
    body = {**body, "signature": {"keyid": key_id(key), "predicate_type": signing.PREDICATE_TYPE}}
    statement = signing.Statement(signing.file_subjects(Path(model.path), signing.model_files(Path(model.path))), body)
    envelope = signing.sign_statement(statement, key)
    report_json = signing.canonical_json(body)
    html = render_html(body | {"report": ws.reports.id_for(report_json)})  # the page names its id; the id hashes the JSON only
    return ws.reports.write(report_json, html, json.dumps(envelope, indent=2).encode(), model=model.id,
                            baseline=baseline, passed=bool(body["gate"]["passed"]))


def read(ws: Any, ref: str) -> tuple[Any, dict[str, Any]]:
    """A report version and its JSON body."""
    report = ws.reports.get(ref)
    return report, json.loads((report.path / REPORT).read_text())


def verify(ws: Any, ref: str, *, public_pem: str | None = None) -> list[str]:
    """Every reason the report cannot be trusted for its model version; [] when it can."""
    report, body = read(ws, ref)
    problems = [f"report file {p}" for p in verify_dir(report.path)]
    key = load_public_key(public_pem) if public_pem else signing_key(ws).public_key()
    try:
        statement = signing.verify_envelope(signing.read_envelope(report.path / ENVELOPE), key)
    except signing.SignatureError as exc:
        return [*problems, f"signature: {exc.message}"]
    if signing.canonical_json(statement.predicate) != (report.path / REPORT).read_bytes():
        problems.append("report.json differs from the report that was signed")
    model_id = body["model"]["id"]
    try:
        model = ws.models.get(model_id)
    except NotFoundError:
        return [*problems, f"the model version {model_id} it judged is not in this workspace"]
    problems += [f"model {model_id}: {p}" for p in signing.verify_subjects(statement, Path(model.path))]
    if model.manifest.get("base", {}).get("sha256") != body["model"]["base"]["sha256"]:
        problems.append(f"model {model_id}: its base model hash differs from the one the report judged")
    return problems
