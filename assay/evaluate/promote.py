"""Promotion: a model version goes to production only on a passing, matching, verified report.

    promote(ws, "mv-1a2b3c4d5e6f")                              # refuses with the reasons otherwise
    promote(ws, "mv-1a2b3c4d5e6f", force=True, reason="...")   # recorded as forced
    reject(ws, "mv-1a2b3c4d5e6f", reason="...")

Every decision is appended to the catalog's history (who, when, which report, why); an alias (a
tag, `production` by default) points at the promoted version, and the version it pointed at before
becomes `superseded` once no alias names it.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from assay.errors import CheckFailed, ConfigError
from assay.evaluate.attest import read, verify
from assay.store.manifest import now_iso

# The alias `promote` moves by default, and what `--baseline promoted` reads. Defined here, not in
# `loading`, so that `assay models promote | history` do not import torch.
PROMOTED_ALIAS = "production"


@dataclass
class Promotion:
    model: str
    alias: str
    report: str | None
    forced: bool
    previous: str | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def promote(ws: Any, ref: str, *, alias: str = PROMOTED_ALIAS, force: bool = False, reason: str | None = None) -> Promotion:
    """Point `alias` at the model version if its latest report passes and verifies; else refuse and say why."""
    model = ws.models.get(ref)
    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason: a forced promotion is recorded with why", hint='add --reason "..."')
    report_id, problems = latest_verdict(ws, model.id)
    if problems and not force:
        raise CheckFailed(f"refusing to promote {model.id}:\n  - " + "\n  - ".join(problems),
                          hint="evaluate it with `assay eval run` (or fix what does not match); "
                          "--force --reason \"...\" overrides and is recorded")
    previous = ws.models.tag(model.id, alias)
    _record(ws, "promote", model.id, report_id, alias, reason if force else None, force, "promoted")
    if previous and previous != model.id and not _aliases_of(ws, previous):
        _record(ws, "demote", previous, None, alias, f"alias {alias} moved to {model.id}", False, "superseded")
    return Promotion(model.id, alias, report_id, force, previous if previous != model.id else None)


def reject(ws: Any, ref: str, *, reason: str) -> None:
    if not reason.strip():
        raise ConfigError("a rejection needs a reason", hint='add --reason "..."')
    model = ws.models.get(ref)
    _record(ws, "reject", model.id, None, None, reason, False, "rejected")


def latest_verdict(ws: Any, model_id: str) -> tuple[str | None, list[str]]:
    """The model's newest report and every reason it does not allow promotion ([] when it does)."""
    reports = ws.reports.for_model(model_id)
    if not reports:
        return None, [f"no evaluation report for {model_id}"]
    report_id = reports[0].id
    problems = [f"report {report_id}: {p}" for p in verify(ws, report_id)]
    _, body = read(ws, report_id)
    if body.get("model", {}).get("id") != model_id:
        problems.append(f"report {report_id} judges {body.get('model', {}).get('id')}, not {model_id}")
    if not body.get("gate", {}).get("passed"):
        reasons = body.get("gate", {}).get("reasons") or ["failed"]
        problems.append(f"report {report_id}: the gate failed: " + "; ".join(reasons))
    return report_id, problems


def history(ws: Any) -> list[dict[str, Any]]:
    return ws.catalog.events()


def _aliases_of(ws: Any, version_id: str) -> list[str]:
    entry = ws.catalog.get(version_id)
    return list(entry.tags) if entry else []


def _record(ws: Any, action: str, version: str, report: str | None, alias: str | None, reason: str | None,
            forced: bool, status: str) -> None:
    ws.catalog.add_event({"at": now_iso(), "action": action, "version_id": version, "report_id": report, "alias": alias,
                          "actor": _actor(), "reason": reason, "forced": forced, "status": status})


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
