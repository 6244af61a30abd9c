"""assay's search engine for argilla-server, end to end: HTTP API and the argilla SDK against a real server.

One small dataset with known fields, metadata, suggestions, vectors and two annotators' responses; every
expectation below is derived by hand from the table in `seeded`.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest

from assay.label.server import ServerInfo, add_user

pytestmark = pytest.mark.argilla

N = 12
SOURCES = {0: "web", 1: "books", 2: ["web", "books"], 3: "forum", 4: "web"}
TEXTS = {
    0: (
        "How do I bake sourdough bread?",
        "Mix flour, water and starter.",
        "bread recipe please",
        "Here is a sourdough recipe",
    ),
    1: ("What is the capital of France?", "Paris is the capital of France.", "capital question", "Paris"),
    2: ("Translate hello to Spanish", "Hola", "translation please", "done"),
    3: ("Explain photosynthesis", "Plants turn light into sugar", "plants and light", "chlorophyll matters"),
    4: ("bread bread bread flour", "sourdough", "more bread", "ok"),
}
VECTORS = {0: [1, 0, 0], 1: [0.9, 0.1, 0], 2: [0, 1, 0], 3: [0, 0, 1], 4: [-1, 0, 0]}


def ext(i: int) -> str:
    return f"r{i:02d}"


def source(i: int):
    if i in SOURCES:
        return SOURCES[i]
    if i == 11:
        return None
    return "books" if i % 2 else "forum"


def vector(i: int) -> list[float] | None:
    return None if i == 11 else VECTORS.get(i, [1.0, i * 0.1, 0.5])


@dataclass
class Seeded:
    info: ServerInfo
    dataset_id: str
    ids: dict[str, str]
    keys: dict[str, str]
    users: dict[str, str] = field(default_factory=dict)
    mid_time: str = ""

    def client(self, user: str = "owner") -> httpx.Client:
        return httpx.Client(
            base_url=self.info.url, headers={"X-Argilla-Api-Key": self.keys[user]}, timeout=30
        )

    def search(
        self, body: dict | None = None, *, user: str = "owner", limit: int = 50, offset: int = 0
    ) -> tuple[list[str], int, list]:
        """External ids in the engine's order, the total and the query scores."""
        path = (
            f"/api/v1/me/datasets/{self.dataset_id}/records/search"
            if user != "owner"
            else f"/api/v1/datasets/{self.dataset_id}/records/search"
        )
        with self.client(user) as client:
            response = client.post(path, params={"limit": limit, "offset": offset}, json=body or {})
        assert response.status_code == 200, response.text
        payload = response.json()
        items = payload["items"]
        return (
            [item["record"]["external_id"] for item in items],
            payload["total"],
            [item.get("query_score") for item in items],
        )

    def ids_of(self, body: dict, **kw) -> set[str]:
        return set(self.search(body, **kw)[0])


def terms(scope: dict, values: list) -> dict:
    return {"filters": {"and": [{"type": "terms", "scope": scope, "values": values}]}}


def rng(scope: dict, ge=None, le=None) -> dict:
    leaf = {"type": "range", "scope": scope}
    if ge is not None:
        leaf["ge"] = ge
    if le is not None:
        leaf["le"] = le
    return {"filters": {"and": [leaf]}}


def rset(*indices: int) -> set[str]:
    return {ext(i) for i in indices}


def _record(rg, i: int):
    prompt, response, user_turn, assistant_turn = TEXTS.get(
        i, (f"generic question {i}", f"generic answer {i}", f"hi {i}", "hello")
    )
    metadata = {"cluster": i % 3}
    if source(i) is not None:
        metadata["source"] = source(i)
    if i != 10:
        metadata["q_len"] = i * 1.5
    suggestions = []
    if i <= 3:
        decision = ["approve", "reject", "edit", "approve"][i]
        agent = "heuristic" if i < 2 else "llm"
        suggestions.append(
            rg.Suggestion(
                "decision",
                decision,
                score=[0.9, 0.2, 0.5, 0.7][i],
                agent=agent,
                type="human" if i == 3 else "model",
            )
        )
        suggestions.append(rg.Suggestion("quality", [5, 2, 3, 4][i], agent=agent))
    if i == 0:
        suggestions.append(rg.Suggestion("tags", ["pii", "short"], score=[0.8, 0.3], agent="heuristic"))
    if i == 1:
        suggestions.append(rg.Suggestion("tags", ["toxic"], score=[0.6], agent="heuristic"))
    conversation = [{"role": "user", "content": user_turn}, {"role": "assistant", "content": assistant_turn}]
    vectors = {"emb": vector(i)} if vector(i) is not None else {}
    return rg.Record(
        id=ext(i),
        fields={"prompt": prompt, "response": response, "conv": conversation},
        metadata=metadata,
        suggestions=suggestions,
        vectors=vectors,
    )


RESPONSES = {
    "alice": {
        0: ("submitted", {"decision": "approve", "quality": 5}),
        1: ("submitted", {"decision": "reject", "quality": 1}),
        2: ("draft", {"decision": "edit"}),
        3: ("discarded", {}),
    },
    "bob": {
        0: ("submitted", {"decision": "approve", "quality": 3}),
        4: ("submitted", {"decision": "reject", "quality": 2}),
    },
}


@pytest.fixture(scope="session")
def seeded(argilla_server: ServerInfo) -> Seeded:
    import argilla as rg

    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="prompt"), rg.TextField(name="response"), rg.ChatField(name="conv")],
        questions=[
            rg.LabelQuestion(name="decision", labels=["approve", "reject", "edit"]),
            rg.RatingQuestion(name="quality", values=[1, 2, 3, 4, 5], required=False),
            rg.MultiLabelQuestion(name="tags", labels=["pii", "toxic", "short"], required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="source"),
            rg.FloatMetadataProperty(name="q_len"),
            rg.IntegerMetadataProperty(name="cluster"),
        ],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
    )
    dataset = rg.Dataset(name="engine-test", workspace="assay", settings=settings, client=client).create()
    dataset.records.log([_record(rg, i) for i in range(6)])
    time.sleep(1.1)
    mid_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    time.sleep(1.1)
    dataset.records.log([_record(rg, i) for i in range(6, N)])
    seeded = Seeded(argilla_server, str(dataset.id), {}, {"owner": argilla_server.api_key}, mid_time=mid_time)
    with seeded.client() as http:
        items = http.post(
            f"/api/v1/datasets/{seeded.dataset_id}/records/search", params={"limit": 100}, json={}
        ).json()["items"]
    seeded.ids = {item["record"]["external_id"]: item["record"]["id"] for item in items}
    for name in RESPONSES:
        user = add_user(argilla_server.home, name)
        seeded.keys[name], seeded.users[name] = user["api_key"], user["id"]
    _respond(seeded)
    return seeded


def _respond(seeded: Seeded) -> None:
    for name, answers in RESPONSES.items():
        with seeded.client(name) as http:
            for i, (status, values) in answers.items():
                body = {"values": {q: {"value": v} for q, v in values.items()}, "status": status}
                response = http.post(f"/api/v1/records/{seeded.ids[ext(i)]}/responses", json=body)
                assert response.status_code == 201, response.text


RECORD = {"entity": "record"}
GENERIC = set(range(5, N))


def test_record_scope_filters(seeded):
    assert seeded.ids_of(terms({**RECORD, "property": "status"}, ["completed"])) == rset(0, 1, 4)
    assert seeded.ids_of(terms({**RECORD, "property": "status"}, ["pending"])) == rset(2, 3, *GENERIC)
    assert seeded.ids_of(terms({**RECORD, "property": "external_id"}, ["r03", "r07", "nope"])) == rset(3, 7)
    assert seeded.ids_of(terms({**RECORD, "property": "id"}, [seeded.ids["r05"]])) == rset(5)
    assert seeded.ids_of(rng({**RECORD, "property": "inserted_at"}, ge=seeded.mid_time)) == rset(*range(6, N))
    assert seeded.ids_of(rng({**RECORD, "property": "inserted_at"}, le=seeded.mid_time)) == rset(*range(6))


def test_metadata_filters_match_any_list_element_and_ranges(seeded):
    scope = {"entity": "metadata", "metadata_property": "source"}
    assert seeded.ids_of(terms(scope, ["web"])) == rset(0, 2, 4)
    assert seeded.ids_of(terms(scope, ["books"])) == rset(1, 2, 5, 7, 9)
    q_len = {"entity": "metadata", "metadata_property": "q_len"}
    assert seeded.ids_of(rng(q_len, ge=3, le=7.5)) == rset(2, 3, 4, 5)
    assert seeded.ids_of(rng(q_len, ge=15)) == rset(11)  # r10 has no q_len
    cluster = {"entity": "metadata", "metadata_property": "cluster"}
    assert seeded.ids_of(terms(cluster, ["2"])) == rset(2, 5, 8, 11)


def test_and_of_filters(seeded):
    body = {
        "filters": {
            "and": [
                {
                    "type": "terms",
                    "scope": {"entity": "metadata", "metadata_property": "source"},
                    "values": ["books"],
                },
                {"type": "range", "scope": {"entity": "metadata", "metadata_property": "q_len"}, "le": 8},
                {"type": "terms", "scope": {**RECORD, "property": "status"}, "values": ["pending"]},
            ]
        }
    }
    assert seeded.ids_of(body) == rset(2, 5)


def test_suggestion_filters(seeded):
    decision = {"entity": "suggestion", "question": "decision"}
    assert seeded.ids_of(terms({**decision, "property": "value"}, ["approve"])) == rset(0, 3)
    assert seeded.ids_of(rng({**decision, "property": "score"}, ge=0.5)) == rset(0, 2, 3)
    assert seeded.ids_of(terms({**decision, "property": "agent"}, ["llm"])) == rset(2, 3)
    assert seeded.ids_of(terms({**decision, "property": "type"}, ["human"])) == rset(3)
    tags = {"entity": "suggestion", "question": "tags"}
    assert seeded.ids_of(terms({**tags, "property": "value"}, ["short"])) == rset(0)
    assert seeded.ids_of(rng({**tags, "property": "score"}, ge=0.5, le=0.7)) == rset(1)
    assert seeded.ids_of(
        rng({"entity": "suggestion", "question": "quality", "property": "value"}, ge=3)
    ) == rset(0, 2, 3)


def test_response_filters_unscoped(seeded):
    response_status = {"entity": "response", "property": "status"}
    assert seeded.ids_of(terms(response_status, ["submitted"])) == rset(0, 1, 4)
    assert seeded.ids_of(terms(response_status, ["pending"])) == rset(*GENERIC)  # nobody answered
    assert seeded.ids_of(terms(response_status, ["pending", "draft"])) == rset(2, *GENERIC)
    decision = {"entity": "response", "question": "decision"}
    assert seeded.ids_of(terms(decision, ["reject"])) == rset(1, 4)
    assert seeded.ids_of(rng({"entity": "response", "question": "quality"}, ge=3)) == rset(0)


def test_me_response_status_is_per_user(seeded):
    status = {"entity": "response", "property": "status"}
    assert seeded.ids_of(terms(status, ["pending"]), user="alice") == rset(*range(4, N))
    assert seeded.ids_of(terms(status, ["pending"]), user="bob") == rset(1, 2, 3, *GENERIC)
    assert seeded.ids_of(terms(status, ["submitted"]), user="alice") == rset(0, 1)
    assert seeded.ids_of(terms(status, ["draft", "discarded"]), user="alice") == rset(2, 3)
    assert seeded.ids_of(terms(status, ["pending", "submitted"]), user="bob") == rset(*range(N))
    decision = {"entity": "response", "question": "decision"}
    assert seeded.ids_of(terms(decision, ["reject"]), user="bob") == rset(4)


# What the UI sends for a user's pending queue: response.status in [pending] and record.status == pending.
PENDING_QUEUE = {"filters": {"and": [
    {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
    {"type": "terms", "scope": {**RECORD, "property": "status"}, "values": ["pending"]},
]}}


def test_ui_annotation_view_pending_query(seeded):
    assert seeded.ids_of(PENDING_QUEUE, user="bob") == rset(2, 3, *GENERIC)
    _, total, _ = seeded.search(PENDING_QUEUE, user="bob", limit=3)
    assert total == 9


def test_multi_key_sort_with_missing_last(seeded):
    body = {
        "sort": [
            {"scope": {"entity": "metadata", "metadata_property": "cluster"}, "order": "asc"},
            {"scope": {"entity": "metadata", "metadata_property": "q_len"}, "order": "desc"},
        ]
    }
    order, total, _ = seeded.search(body)
    assert total == N
    assert order == ["r09", "r06", "r03", "r00", "r07", "r04", "r01", "r10", "r11", "r08", "r05", "r02"]
    by_len = {"sort": [{"scope": {"entity": "metadata", "metadata_property": "q_len"}, "order": "asc"}]}
    assert seeded.search(by_len)[0][-1] == "r10"
    by_len["sort"][0]["order"] = "desc"
    assert seeded.search(by_len)[0][-1] == "r10"
    newest = {"sort": [{"scope": {**RECORD, "property": "inserted_at"}, "order": "desc"}]}
    assert set(seeded.search(newest, limit=6)[0]) == rset(*range(6, N))


def test_sort_by_suggestion_and_response(seeded):
    by_score = {
        "sort": [
            {"scope": {"entity": "suggestion", "question": "decision", "property": "score"}, "order": "desc"}
        ]
    }
    assert seeded.search(by_score, limit=4)[0] == ["r00", "r03", "r02", "r01"]
    by_terms = {"sort": [{"scope": {"entity": "metadata", "metadata_property": "source"}, "order": "asc"}]}
    assert seeded.search(by_terms)[0][:2] == ["r01", "r05"]  # "books" first; r02's list value has no sort key
    mean_quality = {"sort": [{"scope": {"entity": "response", "question": "quality"}, "order": "asc"}]}
    assert seeded.search(mean_quality, limit=3)[0] == ["r01", "r04", "r00"]  # means 1, 2, (5+3)/2
    mine = {"sort": [{"scope": {"entity": "response", "question": "quality"}, "order": "desc"}]}
    assert seeded.search(mine, user="alice", limit=2)[0] == ["r00", "r01"]
    assert seeded.search(mine, user="bob", limit=2)[0] == ["r00", "r04"]


def test_text_query_all_fields_one_field_and_chat(seeded):
    order, total, scores = seeded.search({"query": {"text": {"q": "bread"}}})
    assert total == 2 and order == ["r04", "r00"]  # r04 says it four times
    assert scores[0] > scores[1] > 0
    assert seeded.ids_of({"query": {"text": {"q": "sourdough bread"}}}) == rset(0, 4)
    assert seeded.ids_of({"query": {"text": {"q": "bread", "field": "prompt"}}}) == rset(0, 4)
    assert seeded.ids_of({"query": {"text": {"q": "starter", "field": "prompt"}}}) == set()
    assert seeded.ids_of({"query": {"text": {"q": "starter", "field": "response"}}}) == rset(0)
    assert seeded.ids_of({"query": {"text": {"q": "chlorophyll", "field": "conv"}}}) == rset(3)
    assert seeded.ids_of({"query": {"text": {"q": "PARIS"}}}) == rset(1)
    assert seeded.ids_of({"query": {"text": {"q": "paris | hola"}}}) == rset(1, 2)
    assert seeded.ids_of({"query": {"text": {"q": "bread -starter"}}}) == rset(4)
    assert seeded.ids_of({"query": {"text": {"q": '"capital of france"'}}}) == rset(1)
    assert seeded.ids_of({"query": {"text": {"q": "photo*"}}}) == rset(3)
    response = seeded.client().post(
        f"/api/v1/datasets/{seeded.dataset_id}/records/search",
        json={"query": {"text": {"q": "x", "field": "nope"}}},
    )
    assert response.status_code == 422


def test_text_query_with_filter_sort_and_paging(seeded):
    body = {
        "query": {"text": {"q": "generic"}},
        "filters": {
            "and": [
                {
                    "type": "terms",
                    "scope": {"entity": "metadata", "metadata_property": "source"},
                    "values": ["books"],
                }
            ]
        },
        "sort": [{"scope": {"entity": "metadata", "metadata_property": "q_len"}, "order": "desc"}],
    }
    order, total, _ = seeded.search(body, limit=2, offset=1)
    assert total == 3 and order == ["r07", "r05"]


def test_me_default_order_is_random_per_user_and_stable(seeded):
    alice, total, _ = seeded.search({}, user="alice")
    bob, _, _ = seeded.search({}, user="bob")
    assert total == N and sorted(alice) == sorted(bob) == sorted(seeded.ids)
    assert alice != bob
    assert seeded.search({}, user="alice")[0] == alice
    pages = [seeded.search({}, user="alice", limit=5, offset=offset)[0] for offset in (0, 5, 10)]
    assert sum(pages, []) == alice
    owner, _, _ = seeded.search({})
    assert set(owner[:6]) == rset(*range(6))  # no user: insertion order (batches in the order logged)


def _expected_similar(
    query: list[float], exclude: set[str] = frozenset(), least: bool = False
) -> list[tuple[str, float]]:
    q = -np.asarray(query, float) if least else np.asarray(query, float)
    scored = []
    for i in range(N):
        v = vector(i)
        if v is None or ext(i) in exclude:
            continue
        v = np.asarray(v, float)
        scored.append((ext(i), (1 + float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v)))) / 2))
    return sorted(scored, key=lambda pair: -pair[1])


def test_similarity_by_vector(seeded):
    body = {"query": {"vector": {"name": "emb", "value": [1, 0, 0]}}}
    order, total, scores = seeded.search(body, limit=4)
    expected = _expected_similar([1, 0, 0])[:4]
    assert order == [name for name, _ in expected] and total == 4
    assert scores == pytest.approx([score for _, score in expected])
    least = {"query": {"vector": {"name": "emb", "value": [1, 0, 0], "order": "least_similar"}}}
    assert seeded.search(least, limit=1)[0] == ["r04"]
    page, _, _ = seeded.search(body, limit=2, offset=2)
    assert page == [name for name, _ in expected[2:4]]


def test_similarity_by_record_excludes_it_and_filters_first(seeded):
    body = {"query": {"vector": {"name": "emb", "record_id": seeded.ids["r00"]}}}
    order, _, _ = seeded.search(body, limit=3)
    assert "r00" not in order and order[0] == "r01"
    filtered = {
        **body,
        "filters": {
            "and": [
                {
                    "type": "terms",
                    "scope": {"entity": "metadata", "metadata_property": "source"},
                    "values": ["forum"],
                }
            ]
        },
    }
    assert set(seeded.search(filtered, limit=10)[0]) == rset(3, 6, 8, 10)
    with_text = {**body, "query": {**body["query"], "text": {"q": "generic"}}}
    assert set(seeded.search(with_text, limit=20)[0]) == rset(*GENERIC) - rset(11)


def test_sdk_queries(seeded):
    import argilla as rg

    client = rg.Argilla(api_url=seeded.info.url, api_key=seeded.info.api_key)
    dataset = client.datasets("engine-test", workspace="assay")
    records = list(dataset.records(query=rg.Query(similar=rg.Similar(name="emb", value=[0, 1, 0])), limit=5))
    record, score = records[0]  # similarity queries yield (record, score) pairs
    assert record.id == "r02" and score == pytest.approx(1.0)
    filtered = dataset.records(
        query=rg.Query(query="generic", filter=rg.Filter([("metadata.source", "==", "forum")]))
    )
    assert {record.id for record in filtered} == rset(6, 8, 10)
    suggested = dataset.records(
        query=rg.Query(filter=rg.Filter([("decision.suggestion", "in", ["reject", "edit"])]))
    )
    assert {record.id for record in suggested} == rset(1, 2)


def test_progress_and_per_user_metrics(seeded):
    with seeded.client() as http:
        progress = http.get(f"/api/v1/datasets/{seeded.dataset_id}/progress").json()
    assert (progress["total"], progress["completed"], progress["pending"]) == (N, 3, N - 3)
    expected = {"alice": (2, 1, 1, N - 4), "bob": (2, 0, 0, N - 2)}
    for name, (submitted, draft, discarded, pending) in expected.items():
        with seeded.client(name) as http:
            metrics = http.get(f"/api/v1/me/datasets/{seeded.dataset_id}/metrics").json()
        expected_metrics = {
            "total": N,
            "submitted": submitted,
            "discarded": discarded,
            "draft": draft,
            "pending": pending,
        }
        assert metrics["responses"] == expected_metrics


def test_metadata_metrics(seeded):
    with seeded.client() as http:
        properties = http.get(f"/api/v1/me/datasets/{seeded.dataset_id}/metadata-properties").json()["items"]
        metrics = {
            p["name"]: http.get(f"/api/v1/metadata-properties/{p['id']}/metrics").json() for p in properties
        }
    assert metrics["source"]["total"] == 12
    assert [(v["term"], v["count"]) for v in metrics["source"]["values"]] == [
        ("books", 5),
        ("forum", 4),
        ("web", 3),
    ]
    assert (metrics["q_len"]["min"], metrics["q_len"]["max"]) == (0.0, 16.5)
    assert (metrics["cluster"]["min"], metrics["cluster"]["max"]) == (0, 2)


def test_webhook_added_later_still_gets_events(seeded):
    """The webhook shortcut skips payloads only while nobody listens: a new webhook is served at once."""
    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with seeded.client() as api:
        hook = api.post(
            "/api/v1/webhooks",
            json={"url": f"http://127.0.0.1:{server.server_port}/hook", "events": ["record.created"]},
        ).json()
        try:
            records = {
                "items": [
                    {
                        "external_id": "hooked",
                        "fields": {
                            "prompt": "p",
                            "response": "r",
                            "conv": [{"role": "user", "content": "c"}],
                        },
                    }
                ]
            }
            assert (
                api.post(f"/api/v1/datasets/{seeded.dataset_id}/records/bulk", json=records).status_code
                == 201
            )
            deadline = time.monotonic() + 30
            while not received and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            api.delete(f"/api/v1/webhooks/{hook['id']}")
            server.shutdown()
            api.delete(
                f"/api/v1/datasets/{seeded.dataset_id}/records", params={"ids": _id_of(api, seeded, "hooked")}
            )
    assert received and received[0]["type"] == "record.created"
    assert received[0]["data"]["external_id"] == "hooked"


def _id_of(api: httpx.Client, seeded: Seeded, external_id: str) -> str:
    body = terms({**RECORD, "property": "external_id"}, [external_id])
    items = api.post(f"/api/v1/datasets/{seeded.dataset_id}/records/search", json=body).json()["items"]
    return items[0]["record"]["id"]


# Loads assay's engine by path inside the server venv, as launcher.py does (argv[1]: the engine folder).
LOAD_ENGINE = """
import asyncio, importlib.util, json, sys, uuid
spec = importlib.util.spec_from_file_location(
    "assay_argilla_engine", sys.argv[1] + "/__init__.py", submodule_search_locations=[sys.argv[1]]
)
engine = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine)
from argilla_server.database import AsyncSessionLocal
"""

ENGINE_PROBE = LOAD_ENGINE + """
from argilla_server.enums import SimilarityOrder
from argilla_server.models import Dataset, VectorSettings

async def main():
    async with AsyncSessionLocal() as db:
        dataset = await Dataset.get(db, uuid.UUID(sys.argv[2]))
        settings = await VectorSettings.get_by(db, name="emb", dataset_id=dataset.id)
    search = await engine.AssayDbSearchEngine.new_instance()
    close = await search.similarity_search(dataset, settings, value=[1, 0, 0], max_results=50, threshold=0.95)
    far = await search.similarity_search(dataset, settings, value=[1, 0, 0], max_results=50, threshold=0.9,
                                         order=SimilarityOrder.least_similar)
    print(json.dumps({"ping": await search.ping(), "info": await search.info(),
                      "close": [[str(i.record_id), i.score] for i in close.items], "close_total": close.total,
                      "far": [str(i.record_id) for i in far.items]}))

asyncio.run(main())
"""


def test_engine_threshold_ping_and_info(seeded, argilla_python, tmp_path):
    """Parts the 2.8 HTTP API cannot reach (it never passes `threshold`), called inside the server venv."""
    import os
    import subprocess
    from pathlib import Path

    import assay.label.server as server_pkg

    engine_dir = Path(server_pkg.__file__).with_name("engine")
    env = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.update(
        ARGILLA_DATABASE_URL=seeded.info.database_url, ARGILLA_HOME_PATH=str(seeded.info.home / "data")
    )
    run = subprocess.run(
        [str(argilla_python), "-c", ENGINE_PROBE, str(engine_dir), seeded.dataset_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ping"] is True and result["info"]["engine"] == "assaydb"
    by_id = {v: k for k, v in seeded.ids.items()}
    close = [(by_id[rid], score) for rid, score in result["close"]]
    assert [name for name, _ in close] == ["r00", "r01"] and result["close_total"] == 2
    assert all(score >= 0.95 for _, score in close)
    assert [by_id[rid] for rid in result["far"]] == ["r04"]


def test_similarity_cache_sees_added_updated_and_deleted_vectors(argilla_server):
    """The server caches decoded vectors; every write (add, vector update, delete) must show in the next query."""
    import argilla as rg

    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="ok", labels=["yes", "no"])],
        vectors=[rg.VectorField(name="emb", dimensions=4)],
    )
    dataset = rg.Dataset(name="vector-cache", workspace="assay", settings=settings, client=client).create()
    rng = np.random.default_rng(7)
    stored = {f"v{i:02d}": rng.standard_normal(4).tolist() for i in range(30)}

    def log(names):
        dataset.records.log(
            [rg.Record(id=name, fields={"text": name}, vectors={"emb": stored[name]}) for name in names]
        )

    def expected(query, limit):
        q = np.asarray(query, float)
        scored = [
            (name, (1 + float(q @ np.asarray(v) / (np.linalg.norm(q) * np.linalg.norm(v)))) / 2)
            for name, v in stored.items()
        ]
        return sorted(scored, key=lambda pair: -pair[1])[:limit]

    def search(query, limit=50):
        body = {"query": {"vector": {"name": "emb", "value": list(query)}}}
        with httpx.Client(
            base_url=argilla_server.url, headers={"X-Argilla-Api-Key": argilla_server.api_key}
        ) as http:
            response = http.post(
                f"/api/v1/datasets/{dataset.id}/records/search", params={"limit": limit}, json=body
            )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        return [(item["record"]["external_id"], item["query_score"]) for item in items]

    def check(query, limit=50):
        got, want = search(query, limit), expected(query, limit)
        assert [name for name, _ in got] == [name for name, _ in want]
        assert [score for _, score in got] == pytest.approx([score for _, score in want])

    query = [1.0, 0.5, -0.25, 0.0]
    log(list(stored)[:20])
    pending = {name: stored.pop(name) for name in list(stored)[20:]}
    check(query)  # cold: decodes everything
    check(query, limit=5)  # warm
    stored.update(pending)
    log(list(pending))  # added records
    check(query)
    stored["v03"] = [v * -3 for v in query]  # an updated vector: from (maybe) near to the very last
    stored["v25"] = [v * 2 for v in query]  # ... and one to the very first
    log(["v03", "v25"])
    got = search(query)
    assert got[0][0] == "v25" and got[-1][0] == "v03"
    check(query)
    gone = [record for record in dataset.records if record.id in ("v25", "v00", "v11")]
    dataset.records.delete(gone)
    for name in ("v25", "v00", "v11"):
        stored.pop(name)
    check(query)
    check([0.0, 0.0, 1.0, 1.0], limit=7)
    dataset.delete()


# The text index (SQLite FTS5 / PostgreSQL tsvector), kept in step by triggers on Argilla's records table.

TEXT_INDEX_PROBE = LOAD_ENGINE + """
from sqlalchemy import text

async def main():
    indexes = engine.indexes
    async with AsyncSessionLocal() as db:
        postgresql = db.bind.dialect.name == "postgresql"
        if sys.argv[2] == "drop":  # as before the engine had a text index: no table, no triggers
            for statement in indexes._PG_DROP if postgresql else indexes._SQLITE_DROP:
                await db.execute(text(statement))
            await db.execute(text("DELETE FROM assay_engine_meta WHERE key = 'text_schema'"))
            await db.commit()
        else:
            await indexes.prepare(db)

asyncio.run(main())
"""


def _text_index_probe(argilla_server: ServerInfo, argilla_python, tmp_path, action: str) -> None:
    import os
    import subprocess
    from pathlib import Path

    import assay.label.server as server_pkg

    engine_dir = Path(server_pkg.__file__).with_name("engine")
    env = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.update(
        ARGILLA_DATABASE_URL=argilla_server.database_url, ARGILLA_HOME_PATH=str(argilla_server.home / "data")
    )
    run = subprocess.run(
        [str(argilla_python), "-c", TEXT_INDEX_PROBE, str(engine_dir), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]


def _text_dataset(argilla_server: ServerInfo, name: str):
    import argilla as rg

    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="title"), rg.TextField(name="body"), rg.ChatField(name="chat")],
        questions=[rg.LabelQuestion(name="ok", labels=["yes", "no"])],
        metadata=[rg.IntegerMetadataProperty(name="n")],
    )
    return rg.Dataset(name=name, workspace="assay", settings=settings, client=client).create()


def _text_record(rg, name: str, title: str, body: str, said: str = "hi", n: int = 0):
    chat = [{"role": "user", "content": said}, {"role": "assistant", "content": "noted"}]
    return rg.Record(id=name, fields={"title": title, "body": body, "chat": chat}, metadata={"n": n})


def _text_search(argilla_server: ServerInfo, dataset_id: str, body: dict, **params) -> tuple[list[str], int]:
    with httpx.Client(
        base_url=argilla_server.url, headers={"X-Argilla-Api-Key": argilla_server.api_key}, timeout=30
    ) as http:
        response = http.post(
            f"/api/v1/datasets/{dataset_id}/records/search", params={"limit": 50, **params}, json=body
        )
    assert response.status_code == 200, response.text
    payload = response.json()
    return [item["record"]["external_id"] for item in payload["items"]], payload["total"]


def test_text_index_follows_inserts_updates_and_deletes(argilla_server):
    import argilla as rg

    dataset = _text_dataset(argilla_server, "text-index-writes")
    dataset.records.log(
        [
            _text_record(rg, "t1", "Quarterly report", "revenue grew in the north"),
            _text_record(rg, "t2", "Weather notes", "rain in the north, sun in the south", said="umbrella"),
        ]
    )

    def found(q: str, field: str | None = None) -> set[str]:
        text = {"q": q, **({"field": field} if field else {})}
        return set(_text_search(argilla_server, str(dataset.id), {"query": {"text": text}})[0])

    assert found("north") == {"t1", "t2"}
    assert found("umbrella") == {"t2"} and found("noted") == {"t1", "t2"}  # chat: message contents
    assert found("user") == set()  # ... never the roles
    dataset.records.log([_text_record(rg, "t1", "Quarterly report", "costs fell in the east")])  # an update
    assert found("revenue") == set() and found("costs") == {"t1"} and found("north") == {"t2"}
    dataset.records.log([_text_record(rg, "t3", "Revenue forecast", "north again")])  # an insert
    assert found("revenue") == {"t3"} and found("revenue", field="body") == set()
    dataset.records.delete([record for record in dataset.records if record.id == "t2"])
    assert found("north") == {"t3"} and found("umbrella") == set()
    dataset.delete()


def test_text_query_operators_through_the_index(argilla_server):
    import argilla as rg

    dataset = _text_dataset(argilla_server, "text-index-operators")
    rows = {
        "o1": ("The quick brown fox", "jumps over the lazy dog", 5),
        "o2": ("A brown dog", "quick thinking wins", 3),
        "o3": ("Lazy Sunday", "nothing quick here, fox_trot dancing; v3.5 released", 9),
        "o4": ("Café menu", "crème brûlée and coffee", 1),
    }
    dataset.records.log([_text_record(rg, k, t, b, n=n) for k, (t, b, n) in rows.items()])
    dataset_id = str(dataset.id)

    def found(q: str, **extra) -> set[str]:
        return set(_text_search(argilla_server, dataset_id, {"query": {"text": {"q": q}}, **extra})[0])

    assert found('"brown fox"') == {"o1"}  # a phrase
    assert found('"fox brown"') == set()
    assert found('"lazy dog"') == {"o1"} and found('"lazy sunday"') == {"o3"}
    assert found('"dog quick"') == set()  # a phrase never spans two fields
    assert found("bro*") == {"o1", "o2"} and found("qui* laz*") == {"o1", "o3"}  # prefixes
    assert found("fox | coffee") == {"o1", "o4"}  # OR
    assert found("quick -fox") == {"o2", "o3"} and found("quick -lazy -brown") == set()  # negation
    assert found("-quick") == {"o4"}  # only negated clauses
    assert found("fox_trot") == {"o3"} and found("fox") == {"o1"}  # "_" is a word character, as in \w+
    assert found("5") == {"o3"} and found("v3") == {"o3"}  # "v3.5" is the words v3 and 5
    assert found("CAFÉ") == {"o4"} and found("cafe") == set()  # case-folded, accents kept
    assert found("brûlée") == {"o4"}
    by_title = {"query": {"text": {"q": "quick", "field": "title"}}}
    assert set(_text_search(argilla_server, dataset_id, by_title)[0]) == {"o1"}
    # With a filter and a sort: counted and paged in SQL, in the sort's order.
    body = {
        "query": {"text": {"q": "quick"}},
        "filters": {
            "and": [{"type": "range", "scope": {"entity": "metadata", "metadata_property": "n"}, "ge": 4}]
        },
        "sort": [{"scope": {"entity": "metadata", "metadata_property": "n"}, "order": "asc"}],
    }
    assert _text_search(argilla_server, dataset_id, body) == (["o1", "o3"], 2)
    assert _text_search(argilla_server, dataset_id, body, offset=1, limit=1) == (["o3"], 2)
    dataset.delete()


def test_text_index_backfills_records_written_before_it_existed(argilla_server, argilla_python, tmp_path):
    import argilla as rg

    dataset = _text_dataset(argilla_server, "text-index-backfill")
    dataset.records.log([_text_record(rg, "b1", "older", "written before the index")])
    _text_index_probe(argilla_server, argilla_python, tmp_path, "drop")
    try:
        dataset.records.log([_text_record(rg, "b2", "unindexed", "written while no trigger existed")])
    finally:
        _text_index_probe(argilla_server, argilla_python, tmp_path, "prepare")
    found = set(_text_search(argilla_server, str(dataset.id), {"query": {"text": {"q": "written"}}})[0])
    assert found == {"b1", "b2"}
    dataset.records.log([_text_record(rg, "b3", "newer", "written after the rebuild")])  # triggers are back
    assert _text_search(argilla_server, str(dataset.id), {"query": {"text": {"q": "written"}}})[1] == 3
    dataset.delete()


def test_pending_queue_pages_in_the_users_fixed_order(seeded):
    """The UI's annotation view: the user's pending records, paged in one fixed order, total counted."""
    whole, total, _ = seeded.search(PENDING_QUEUE, user="alice")
    assert total == len(whole) == N - 5 and set(whole) == set(seeded.ids) - rset(0, 1, 2, 3, 4)
    pages = [seeded.search(PENDING_QUEUE, user="alice", limit=3, offset=offset)[0] for offset in range(0, N, 3)]
    assert sum(pages, []) == whole
    everything, _, _ = seeded.search({}, user="alice")
    assert [name for name in everything if name in whole] == whole  # the filter keeps the user's order
