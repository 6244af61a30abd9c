"""The Argilla REST store without a server: the requests it sends and how it maps the server's answers.

The same store against the real argilla-server is tested in test_label_push_pull.py.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import httpx
import polars as pl
import pytest

from assay.errors import AssayError, ConfigError, MissingDependencyError, WorkspaceError
from assay.label.argilla_rest import ArgillaStore
from assay.label.client import Connection
from assay.label.config import LabelConfig
from assay.label.spec import build_spec
from assay.label.store import DatasetRef, ReviewRecord

LABEL = Path(__file__).resolve().parents[2] / "assay" / "label"
CONN = Connection("http://argilla.test", "owner.key", "env")


class FakeServer:
    """Answers the calls a push makes; `fail` = (method, path suffix) answered 422; `calls` logs (method, path, body)."""

    def __init__(self, fail: tuple[str, str] | None = None, me_status: int = 200) -> None:
        self.datasets: list[dict] = []
        self.calls: list[tuple[str, str, dict | None]] = []
        self.fail, self.me_status = fail, me_status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else None
        self.calls.append((method, path, body))
        if self.fail and method == self.fail[0] and path.endswith(self.fail[1]):
            return httpx.Response(422, json={"detail": "question name is not valid"})
        if path == "/api/v1/version":
            return httpx.Response(200, json={"version": "2.8.0"})
        if path == "/api/v1/me":
            return httpx.Response(self.me_status, json={"id": "u1", "username": "owner"})
        if path == "/api/v1/me/workspaces":
            return httpx.Response(200, json={"items": [{"id": "w1", "name": "assay"}]})
        if path == "/api/v1/me/datasets":
            return httpx.Response(200, json={"items": self.datasets})
        if method == "POST" and path == "/api/v1/datasets":
            self.datasets.append({**body, "id": "d1", "status": "draft"})
            return httpx.Response(201, json=self.datasets[-1])
        if method == "PUT" and path.endswith("/publish"):
            self.datasets[-1]["status"] = "ready"
            return httpx.Response(200, json=self.datasets[-1])
        if method == "DELETE":
            self.datasets = [d for d in self.datasets if not path.endswith(d["id"])]
            return httpx.Response(200, json={})
        if path.endswith("/questions") and method == "GET":
            return httpx.Response(200, json={"items": [{"id": "q-decision", "name": "decision"}, {"id": "q-issues", "name": "issues"}]})
        return httpx.Response(201 if method == "POST" else 200, json={"items": []})


def _store(server: FakeServer) -> ArgillaStore:
    return ArgillaStore.connect(CONN, "assay", transport=httpx.MockTransport(server))


def _spec(vectors: bool = False) -> dict:
    schema = {"id": pl.String, "prompt": pl.String, "response": pl.String, "q_chars": pl.Int64}
    return build_spec(schema, LabelConfig(min_submitted=2), vectors=vectors)


def test_creating_a_dataset_sends_the_sdk_payloads_then_publishes():
    server = FakeServer()
    ref, created = _store(server).ensure_dataset("rv", _spec(vectors=True), version_id="ds-1", guidelines="be kind")
    assert created and ref == DatasetRef("d1", "rv", "http://argilla.test/dataset/d1/annotation-mode", "http://argilla.test", 2, "ds-1")
    posts = {(m, p.rsplit("/", 1)[-1]): b for m, p, b in server.calls if m != "GET"}
    dataset = posts[("POST", "datasets")]
    assert dataset["distribution"] == {"strategy": "overlap", "min_submitted": 2} and dataset["metadata"] == {"assay_version": "ds-1"}
    assert dataset["allow_extra_metadata"] is False and dataset["guidelines"] == "be kind" and dataset["workspace_id"] == "w1"
    sent = [(p.rsplit("/", 1)[-1], b["name"]) for m, p, b in server.calls if m == "POST" and p.startswith("/api/v1/datasets/")]
    assert sent[:7] == [("fields", "record"), ("fields", "prompt"), ("fields", "response"), ("questions", "decision"),
                        ("questions", "corrected_response"), ("questions", "quality"), ("questions", "issues")]
    assert ("vectors-settings", "embedding") in sent and ("metadata-properties", "characters") in sent
    bodies = {b["name"]: b for m, p, b in server.calls if m == "POST" and p.startswith("/api/v1/datasets/")}
    assert bodies["decision"]["settings"] == {"type": "label_selection", "visible_options": 3, "options": [
        {"text": "approve", "value": "approve"}, {"text": "reject", "value": "reject"}, {"text": "edit", "value": "edit"}]}
    assert bodies["issues"]["settings"]["options_order"] == "natural" and bodies["quality"]["settings"]["options"][0] == {"value": 1}
    assert bodies["characters"]["settings"] == {"visible_for_annotators": True, "type": "integer", "min": None, "max": None}
    assert bodies["characters"]["title"] == "Characters" and bodies["quality_score"]["title"].startswith("Quality score")
    assert {bodies[f]["settings"]["use_markdown"] for f in ("record", "prompt", "response")} == {False}
    assert bodies["embedding"]["dimensions"] == 384
    assert server.calls[-1][:2] == ("PUT", "/api/v1/datasets/d1/publish")


def test_a_failed_creation_removes_the_half_made_dataset_and_names_the_server_detail():
    server = FakeServer(fail=("POST", "/questions"))
    with pytest.raises(AssayError) as raised:
        _store(server).ensure_dataset("rv", _spec(), version_id="ds-1", guidelines="")
    assert "HTTP 422" in str(raised.value) and "question name is not valid" in str(raised.value)
    assert ("DELETE", "/api/v1/datasets/d1", None) in server.calls and server.datasets == []


def test_a_draft_left_by_a_dead_push_is_removed_before_creating():
    server = FakeServer()
    server.datasets.append({"id": "old", "name": "rv", "workspace_id": "w1", "status": "draft"})
    ref, created = _store(server).ensure_dataset("rv", _spec(), version_id="ds-1", guidelines="")
    assert created and ref.id == "d1" and ("DELETE", "/api/v1/datasets/old", None) in server.calls


def test_upload_batches_records_and_names_questions_by_id():
    server = FakeServer()
    store, sent = _store(server), []
    suggestion = {"question_name": "issues", "value": ["pii"], "score": [1.0], "agent": "assay-curate", "type": "model"}
    records = (ReviewRecord(f"r{i}", {"prompt": "p"}, {"q_chars": i}, [suggestion], {}) for i in range(5))
    ref = DatasetRef("d1", "rv", "u", "s")
    assert store.upload(ref, records, batch_size=2, sent=sent.append) == 5 and sent == [2, 4, 5]
    bulks = [b for m, p, b in server.calls if (m, p) == ("PUT", "/api/v1/datasets/d1/records/bulk")]
    assert [len(b["items"]) for b in bulks] == [2, 2, 1]
    item = bulks[0]["items"][0]
    assert item["external_id"] == "r0" and item["metadata"] == {"q_chars": 0}
    assert item["suggestions"] == [{"question_id": "q-issues", "value": ["pii"], "score": [1.0], "agent": "assay-curate", "type": "model"}]


def test_errors_name_the_fix():
    with pytest.raises(ConfigError, match="rejected the API key") as raised:
        _store(FakeServer(me_status=401))
    assert "$ARGILLA_API_KEY" in str(raised.value)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(WorkspaceError, match="does not answer") as raised:
        ArgillaStore.connect(CONN, "assay", transport=httpx.MockTransport(down))
    assert "assay label serve" in str(raised.value)
    store = _store(FakeServer())
    store._http._transport = httpx.MockTransport(lambda request: httpx.Response(403))
    with pytest.raises(ConfigError, match="HTTP 403") as raised:
        store.names()
    assert "owner or admin" in str(raised.value)


def test_a_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # as if `assay[label]` were not installed
    with pytest.raises(MissingDependencyError) as raised:
        ArgillaStore(CONN, "assay")
    assert 'pip install "assay[label]"' in str(raised.value)


def _imported(node: ast.AST) -> list[str]:
    """Modules a node imports: import statements, and `require("module", extra)` calls."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require" and node.args:
        first = node.args[0]
        return [first.value] if isinstance(first, ast.Constant) else []
    return []


def test_only_the_rest_store_talks_http_or_imports_the_sdk():
    """Besides the embedded server's own stack (server/), no label module imports httpx or argilla."""
    talking = {
        path.name
        for path in LABEL.rglob("*.py")
        if "server" not in path.relative_to(LABEL).parts
        for node in ast.walk(ast.parse(path.read_text()))
        if any(name.split(".")[0] in ("httpx", "argilla") for name in _imported(node))
    }
    assert talking == {"argilla_rest.py"}
