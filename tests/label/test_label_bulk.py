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


# -- new records inserted with one Core statement (fastpath.py, 5.) store the rows argilla-server's ORM stores --

QUERY = """
import json, sys
from sqlalchemy import create_engine, text
url = sys.argv[1].replace("+aiosqlite", "").replace("+asyncpg", "")
with create_engine(url).connect() as conn:
    out = {name: [dict(row._mapping) for row in conn.execute(text(sql))] for name, sql in json.loads(sys.argv[2]).items()}
print(json.dumps(out, default=str))
"""

_NAMES = "d.name IN ('rows-fast', 'rows-orm')"
_TABLES = {
    "datasets": f"SELECT CAST(d.id AS TEXT) AS id, d.name FROM datasets AS d WHERE {_NAMES}",
    "fields": f"SELECT CAST(f.id AS TEXT) AS id, f.name FROM fields AS f JOIN datasets AS d ON d.id = f.dataset_id WHERE {_NAMES}",
    "questions": "SELECT CAST(q.id AS TEXT) AS id, q.name FROM questions AS q JOIN datasets AS d ON d.id = q.dataset_id "
                 f"WHERE {_NAMES}",
    "vector_settings": "SELECT CAST(v.id AS TEXT) AS id, v.name FROM vectors_settings AS v "
                       f"JOIN datasets AS d ON d.id = v.dataset_id WHERE {_NAMES}",
    "records": "SELECT d.name AS dataset, CAST(r.id AS TEXT) AS id, CAST(r.fields AS TEXT) AS fields, "
               "CAST(r.metadata AS TEXT) AS metadata, CAST(r.status AS TEXT) AS status, r.external_id, "
               "CAST(r.dataset_id AS TEXT) AS dataset_id, CAST(r.inserted_at AS TEXT) AS inserted_at, "
               f"CAST(r.updated_at AS TEXT) AS updated_at FROM records AS r JOIN datasets AS d ON d.id = r.dataset_id WHERE {_NAMES}",
    "suggestions": "SELECT CAST(s.id AS TEXT) AS id, CAST(s.record_id AS TEXT) AS record_id, "
                   "CAST(s.question_id AS TEXT) AS question_id, CAST(s.value AS TEXT) AS value, s.score, s.agent, "
                   "CAST(s.type AS TEXT) AS type, CAST(s.inserted_at AS TEXT) AS inserted_at, "
                   "CAST(s.updated_at AS TEXT) AS updated_at FROM suggestions AS s JOIN records AS r ON r.id = s.record_id "
                   f"JOIN datasets AS d ON d.id = r.dataset_id WHERE {_NAMES}",
    "vectors": "SELECT CAST(v.id AS TEXT) AS id, CAST(v.record_id AS TEXT) AS record_id, "
               "CAST(v.vector_settings_id AS TEXT) AS vector_settings_id, CAST(v.value AS TEXT) AS value, "
               "CAST(v.inserted_at AS TEXT) AS inserted_at, CAST(v.updated_at AS TEXT) AS updated_at FROM vectors AS v "
               f"JOIN records AS r ON r.id = v.record_id JOIN datasets AS d ON d.id = r.dataset_id WHERE {_NAMES}",
    # The label engine's side tables, kept by triggers on records (indexes.py, metaindex.py).
    "text_rows": "SELECT CAST(t.record_id AS TEXT) AS record_id, t.* FROM assay_text_rows AS t JOIN records AS r "
                 f"ON r.id = t.record_id JOIN datasets AS d ON d.id = r.dataset_id WHERE {_NAMES}",
}
_PG_TABLES = {
    "metadata_values": "SELECT CAST(m.record_id AS TEXT) AS record_id, CAST(m.dataset_id AS TEXT) AS dataset_id, m.key, "
                       "CAST(m.kind AS TEXT) AS kind, m.num, m.pre, m.rest FROM assay_metadata_values AS m "
                       f"JOIN datasets AS d ON d.id = m.dataset_id WHERE {_NAMES}",
}
_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?"


def _stored(server: ServerInfo, python) -> dict[str, list[dict]]:
    """The stored rows of both datasets, straight from the database."""
    import json
    import subprocess

    postgresql = server.database_url.startswith("postgresql")
    tables = {**_TABLES, **(_PG_TABLES if postgresql else {})}
    run = subprocess.run([str(python), "-c", QUERY, server.database_url, json.dumps(tables)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _by_dataset(stored: dict[str, list[dict]]) -> dict[str, dict]:
    """Per dataset: every table's rows with each id (records, datasets, fields, questions, vector settings,
    suggestions, vectors) replaced by a name, timestamps checked for their form and replaced by their
    relation to the row's insertion, sorted: what must be equal whichever path stored them."""
    import re

    names = {row["id"]: "<the dataset>" for row in stored["datasets"]}
    for kind in ("fields", "questions", "vector_settings"):
        names |= {row["id"]: f"<{kind} {row['name']}>" for row in stored[kind]}
    dataset_of = {}
    for row in stored["records"]:
        names[row["id"]] = f"<record {row['external_id']}>"
        dataset_of[row["id"]] = row["dataset"]

    def plain(value):
        if not isinstance(value, str):
            return value
        for uuid, name in names.items():
            value = value.replace(uuid, name)
        return value

    out: dict[str, dict] = {row["name"]: {} for row in stored["datasets"]}
    for table, rows in stored.items():
        if table in ("datasets", "fields", "questions", "vector_settings"):
            continue
        for row in rows:
            row = dict(row)
            dataset = dataset_of[row["record_id"] if "record_id" in row else row["id"]]
            if "inserted_at" in row:
                assert re.fullmatch(_STAMP, row["inserted_at"]) and re.fullmatch(_STAMP, row["updated_at"]), row
                row["updated_at"] = "= inserted_at" if row["updated_at"] == row["inserted_at"] else (
                    "> inserted_at" if row["updated_at"] > row["inserted_at"] else "< inserted_at")
                row["inserted_at"] = "<stamp>"
            row.pop("dataset", None)
            if table == "text_rows":
                row.pop("id", None)  # SQLite's own rowid of the side table
            if table in ("suggestions", "vectors"):
                row["id"] = "<own id>" if re.fullmatch(r"[0-9a-f-]{32,36}", row["id"]) else row["id"]
            out[dataset].setdefault(table, []).append({key: plain(value) for key, value in row.items()})
    for tables in out.values():
        for rows in tables.values():
            rows.sort(key=lambda row: json_key(row))
    return out


def json_key(row: dict) -> str:
    import json

    return json.dumps(row, sort_keys=True, default=str)


def _rows_dataset(http: httpx.Client, name: str) -> tuple[str, dict[str, str]]:
    """A published dataset with two text fields, a label and a rating question, a 3-d vector and metadata
    properties (terms, integer, float; extra metadata allowed)."""
    dataset_id, questions, _ = _dataset(http, name)
    base = f"/api/v1/datasets/{dataset_id}"
    for prop, settings in (("split", {"type": "terms"}), ("n", {"type": "integer"}), ("score", {"type": "float"})):
        created = http.post(f"{base}/metadata-properties", json={"name": prop, "title": prop, "settings": settings})
        assert created.status_code == 201, created.text
    return dataset_id, questions


def _rows_items(questions: dict[str, str], round_: int) -> list[dict]:
    rating = {"question_id": questions["quality"], "value": 2, "score": 0.25, "agent": "signals", "type": "model"}
    first = [
        _item("r1", questions, "approve", [1, 0, 0], metadata={"split": "train", "n": 3, "score": 0.5,
                                                               "tags": ["a", "b"], "note": "ünïcode ✓"}),
        _item("r2", questions, "reject", [0, 1, 0], metadata={"split": "val", "n": -7}, suggestions=[rating]),
        {"external_id": "r3", "fields": {"text": "no metadata, no suggestions, no vectors"}},
        {"external_id": "r4", "fields": {"text": "explicit nulls"}, "metadata": None, "suggestions": [], "vectors": {}},
    ]
    if round_ == 1:
        return first
    return [  # a re-push: r1 changed, r2 the same, r5 new
        _item("r1", questions, "reject", [0, 0, 1], metadata={"split": "test", "n": 4, "tags": ["c"]},
              fields={"text": "r1 edited"}),
        first[1],
        _item("r5", questions, "approve", [1, 1, 1], metadata={"split": "train", "n": 0, "score": 1e-3}),
    ]


def test_new_records_inserted_by_the_fast_path_are_stored_as_argilla_stores_them(argilla_server, argilla_python):
    """The same items upserted through the fast path (no answer asked) and through argilla-server's own
    path (an answer asked) store equal rows: records (fields and metadata JSON text, status, external id,
    timestamps' form and inserted_at = updated_at), suggestions, vectors, and the engine's text and metadata
    index rows; a re-push updates in place (same ids, no duplicates) on both."""
    with _http(argilla_server) as http:
        fast_id, fast_questions = _rows_dataset(http, "rows-fast")
        orm_id, orm_questions = _rows_dataset(http, "rows-orm")
        kept_ids = {}
        for round_ in (1, 2):
            quiet = http.put(f"/api/v1/datasets/{fast_id}/records/bulk", headers={"X-Assay-Bulk-Answer": "none"},
                             json={"items": _rows_items(fast_questions, round_)})
            assert quiet.status_code == 200 and quiet.json() == {"items": []}, quiet.text
            full = http.put(f"/api/v1/datasets/{orm_id}/records/bulk", json={"items": _rows_items(orm_questions, round_)})
            assert full.status_code == 200 and len(full.json()["items"]) == len(_rows_items(orm_questions, round_))

            stored = _stored(argilla_server, argilla_python)
            ids = {(row["dataset"], row["external_id"]): row["id"] for row in stored["records"]}
            assert len(ids) == len(stored["records"]) == 2 * (4 if round_ == 1 else 5)  # no duplicate
            assert all(kept_ids[key] == ids[key] for key in kept_ids)  # updated in place
            kept_ids = ids
            by_dataset = _by_dataset(stored)
            assert by_dataset["rows-fast"] == by_dataset["rows-orm"]
            records = {row["external_id"]: row for row in by_dataset["rows-fast"]["records"]}
            assert all(row["status"] == "pending" for row in records.values())
            assert records["r3"]["metadata"] == records["r4"]["metadata"]  # omitted and null metadata: stored alike
            postgresql = "metadata_values" in by_dataset["rows-fast"]
            # SQLite: a row of every field's text per record; PostgreSQL: one per field and one of all fields
            assert len(by_dataset["rows-fast"]["text_rows"]) == len(records) * (2 if postgresql else 1)
            if round_ == 1:
                assert {row["updated_at"] for row in records.values()} == {"= inserted_at"}
            else:
                assert records["r1"]["updated_at"] == "> inserted_at" and records["r5"]["updated_at"] == "= inserted_at"
                assert '"r1 edited"' in records["r1"]["fields"]
            if postgresql:  # the metadata index: one row per element of a list
                tags = sorted(row["pre"] for row in by_dataset["rows-fast"]["metadata_values"] if row["key"] == "tags")
                assert tags == (["a", "b"] if round_ == 1 else ["c"])
