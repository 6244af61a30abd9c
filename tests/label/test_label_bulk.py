"""Bulk record upserts through the launcher's fast paths (fastpath.py: suggestions and vectors upserted with one
statement run per row; no answer built when the client asks for none) store and answer what
argilla-server's own upsert does: new rows get ids and timestamps, a second upsert of a record updates its
rows in place, and the answer shows the stored values."""

from __future__ import annotations

import httpx
import pytest

from assay.label.server import ServerInfo

pytestmark = pytest.mark.argilla


def _http(server: ServerInfo) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": server.api_key}, timeout=30)


def _dataset(http: httpx.Client, name: str = "bulk-fastpath") -> tuple[str, dict[str, str], str]:
    """A published dataset with a label and a rating question and a 3-d vector: (id, question ids, settings id)."""
    workspace = http.get("/api/v1/me/workspaces").json()["items"][0]["id"]
    dataset = http.post("/api/v1/datasets", json={"name": name, "workspace_id": workspace}).json()
    base = f"/api/v1/datasets/{dataset['id']}"
    http.post(f"{base}/fields", json={"name": "text", "title": "text", "settings": {"type": "text"}})
    label = {"type": "label_selection", "options": [{"value": v, "text": v} for v in ("approve", "reject")]}
    rating = {"type": "rating", "options": [{"value": v} for v in (1, 2, 3)]}
    questions = {}
    for name, settings in (("decision", label), ("quality", rating)):
        body = {"name": name, "title": name, "settings": settings, "required": name == "decision"}
        created = http.post(f"{base}/questions", json=body)
        assert created.status_code == 201, created.text
        questions[name] = created.json()["id"]
    vector = http.post(f"{base}/vectors-settings", json={"name": "emb", "title": "emb", "dimensions": 3}).json()
    published = http.put(f"{base}/publish")
    assert published.status_code == 200, published.text
    return dataset["id"], questions, vector["id"]


def _item(external_id: str, questions: dict[str, str], decision: str, vector: list[float], **extra) -> dict:
    suggestions = [{"question_id": questions["decision"], "value": decision, "score": 0.5, "agent": "rules"}]
    return {"external_id": external_id, "fields": {"text": external_id}, "suggestions": suggestions,
            "vectors": {"emb": vector}, **extra}


def _by_external_id(items: list[dict]) -> dict[str, dict]:
    return {item["external_id"]: item for item in items}


def test_bulk_upserts_store_suggestions_and_vectors_like_argilla(argilla_server):
    with _http(argilla_server) as http:
        dataset_id, questions, _ = _dataset(http)
        bulk = f"/api/v1/datasets/{dataset_id}/records/bulk"
        first = http.put(bulk, json={"items": [_item("b1", questions, "approve", [1, 0, 0]),
                                               _item("b2", questions, "reject", [0, 1, 0])]})
        assert first.status_code == 200, first.text
        answered = _by_external_id(first.json()["items"])
        b1 = answered["b1"]["suggestions"]
        assert [(s["value"], s["score"], s["agent"]) for s in b1] == [("approve", 0.5, "rules")]
        assert b1[0]["id"] and b1[0]["inserted_at"] == b1[0]["updated_at"]
        assert answered["b2"]["vectors"] == {"emb": [0, 1, 0]}

        rating = {"question_id": questions["quality"], "value": 3}
        second = http.put(bulk, json={"items": [
            _item("b1", questions, "reject", [0, 0, 1], suggestions=[rating]),  # a new question's suggestion
            _item("b2", questions, "approve", [1, 1, 0]),  # the same question's suggestion: updated in place
            _item("b3", questions, "approve", [1, 0, 1]),
        ]})
        assert second.status_code == 200, second.text
        answered = _by_external_id(second.json()["items"])
        assert {s["value"] for s in answered["b2"]["suggestions"]} == {"approve"}  # the answer is not stale
        assert answered["b2"]["vectors"] == {"emb": [1, 1, 0]}
        stored = http.get(f"/api/v1/datasets/{dataset_id}/records",
                          params={"include": ["suggestions", "vectors"], "limit": 10}).json()["items"]
        stored = _by_external_id(stored)
    b1_values = {s["question_id"]: s["value"] for s in stored["b1"]["suggestions"]}
    assert b1_values == {questions["decision"]: "approve", questions["quality"]: 3}  # b1's decision kept
    b2 = stored["b2"]["suggestions"]
    first_b2 = first.json()["items"][1]["suggestions"][0]
    assert len(b2) == 1 and b2[0]["id"] == first_b2["id"] and b2[0]["value"] == "approve"
    assert b2[0]["updated_at"] > b2[0]["inserted_at"] == first_b2["inserted_at"]
    assert stored["b2"]["vectors"] == {"emb": [1, 1, 0]} and stored["b3"]["vectors"] == {"emb": [1, 0, 1]}


def test_a_bulk_without_answer_stores_the_same(argilla_server):
    """assay's push asks for no answer (X-Assay-Bulk-Answer: none): an empty item list, the same rows stored."""
    with _http(argilla_server) as http:
        dataset_id, questions, _ = _dataset(http, "bulk-no-answer")
        bulk = f"/api/v1/datasets/{dataset_id}/records/bulk"
        items = [_item("n1", questions, "approve", [1, 0, 0]), _item("n2", questions, "reject", [0, 1, 0])]
        quiet = http.put(bulk, json={"items": items}, headers={"X-Assay-Bulk-Answer": "none"})
        assert quiet.status_code == 200, quiet.text
        assert quiet.json() == {"items": []}
        again = http.put(bulk, json={"items": items[:1]}, headers={"X-Assay-Bulk-Answer": "none"})  # an update
        assert again.status_code == 200 and again.json() == {"items": []}
        full = http.put(bulk, json={"items": items[1:]})  # any other client: the whole answer
        assert [item["external_id"] for item in full.json()["items"]] == ["n2"]
        stored = http.get(f"/api/v1/datasets/{dataset_id}/records",
                          params={"include": ["suggestions", "vectors"], "limit": 10}).json()["items"]
    stored = _by_external_id(stored)
    assert [s["value"] for s in stored["n1"]["suggestions"]] == ["approve"]
    assert stored["n2"]["vectors"] == {"emb": [0, 1, 0]} and stored["n1"]["status"] == "pending"
