"""Simulated curators: scripted reviewers that answer through the Argilla API, like people in the UI.

For demos and tests that must finish unattended. Each simulated reviewer is a real Argilla user with
its own key, and its name says what it is (`simulated-…`), so their responses can never pass for a
person's: `assay label progress` and every approved version's manifest list them by that name.

    reviewers = ensure_reviewers(ws, 2)                    # users on the embedded server
    simulate_reviews(ws, "orders-review", reviewers, judge)

A judge sees a record (its fields and metadata) and returns the answers: `{"decision": "approve"}`,
`{"decision": "edit", "corrected_response": "..."}`, or None to leave the record alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assay.errors import NotFoundError
from assay.label.client import Connection, resolve_connection, using_store

Judge = Callable[[str, dict[str, Any]], dict[str, Any] | None]  # (reviewer name, record) -> answers
PREFIX = "simulated-reviewer-"


@dataclass(frozen=True)
class Reviewer:
    name: str
    api_key: str


def ensure_reviewers(ws: Any, count: int) -> list[Reviewer]:
    """`count` simulated reviewers on the workspace's embedded server (created once; an existing one is reused)."""
    from assay.label.server import add_user, require_server
    from assay.label.server.admin import api

    home = ws.layout.argilla
    keys = {u["username"]: u["api_key"] for u in api(require_server(home), "GET", "/api/v1/users")["items"]}
    names = [f"{PREFIX}{i}" for i in range(1, count + 1)]
    for name in names:
        if name not in keys:
            keys[name] = add_user(home, name)["api_key"]
    return [Reviewer(name, keys[name]) for name in names]


def simulate_reviews(ws: Any, dataset: str, reviewers: list[Reviewer], judge: Judge, *, config: Any = None) -> dict[str, int]:
    """Every reviewer answers every record it has not answered yet; returns responses submitted per reviewer."""
    cfg = (config or ws.config).label
    with using_store(ws.root, cfg) as owner:
        ref = owner.find(dataset)
        if ref is None:
            raise NotFoundError(f"no review dataset `{dataset}`", hint="push a version first")
        records = owner.records(ref)  # type: ignore[attr-defined]
    from assay.label.argilla_rest import ArgillaStore

    url = resolve_connection(ws.root, cfg).url
    done: dict[str, int] = {}
    for reviewer in reviewers:
        with ArgillaStore.connect(Connection(url, reviewer.api_key, "simulated"), cfg.workspace) as store:
            me = store.request("GET", "/api/v1/me")["id"]
            done[reviewer.name] = store.submit(_answers(reviewer.name, me, records, judge))
    return done


def _answers(name: str, user_id: str, records: list[dict], judge: Judge) -> list[dict[str, Any]]:
    """The reviewer's answers to the records it has not answered yet."""
    out = []
    for record in records:
        if any(r.get("user_id") == user_id for r in record.get("responses") or []):
            continue
        values = judge(name, record)
        if values:
            out.append({"record_id": record["id"], "values": values})
    return out
