"""The engine's derived data beside Argilla's tables: the metadata values' index (kept by triggers on records)
and the similarity cache's saved blocks (decoded vectors on disk), against a real server on either database.

Probes load the engine by path inside the server venv, as launcher.py does, in a fresh process: a cold
vector cache, and direct access to the engine's side table.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from assay.label.server import ServerInfo

pytestmark = pytest.mark.argilla

LOAD_ENGINE = """
import asyncio, importlib.util, json, sys, uuid
spec = importlib.util.spec_from_file_location(
    "assay_argilla_engine", sys.argv[1] + "/__init__.py", submodule_search_locations=[sys.argv[1]]
)
engine = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine)
from argilla_server.database import AsyncSessionLocal
from sqlalchemy import text
"""


def _probe(server: ServerInfo, python: Path, tmp_path: Path, script: str, *args: str, **env: str) -> dict:
    """Run a probe script in the server venv against the server's database; its last line, if any, is JSON."""
    import assay.label.server as server_pkg

    engine_dir = Path(server_pkg.__file__).with_name("engine")
    environ = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    environ.update(
        ARGILLA_DATABASE_URL=server.database_url, ARGILLA_HOME_PATH=str(server.home / "data"), **env
    )
    run = subprocess.run(
        [str(python), "-c", script, str(engine_dir), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _client(server: ServerInfo) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Argilla-Api-Key": server.api_key}, timeout=30)


def _found(server: ServerInfo, dataset_id: str, *leaves: dict) -> set[str]:
    """The records passing the AND of the leaves; their count (read from the index alone when every leaf is
    a metadata one) must agree with the page."""
    with _client(server) as http:
        response = http.post(
            f"/api/v1/datasets/{dataset_id}/records/search",
            params={"limit": 100},
            json={"filters": {"and": list(leaves)}},
        )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["total"] == len(payload["items"])
    return {item["record"]["external_id"] for item in payload["items"]}


def _metrics(server: ServerInfo, dataset_id: str) -> dict:
    with _client(server) as http:
        properties = http.get(f"/api/v1/me/datasets/{dataset_id}/metadata-properties").json()["items"]
        return {
            p["name"]: http.get(f"/api/v1/metadata-properties/{p['id']}/metrics").json() for p in properties
        }


# The metadata values' index ------------------------------------------------------------------------------

LONG_A = "a" * 210 + " tail one"  # longer than the 200 indexed characters, sharing them with LONG_B
LONG_B = "a" * 210 + " tail two"
METADATA = {
    "m1": {"tag": "red", "n": 1, "x": 0.5},
    "m2": {"tag": ["red", "blue"], "n": 2, "x": 1.5},
    "m3": {"tag": "blue", "n": 3, "x": 2.5},
    "m4": {"tag": LONG_A, "n": 4},
    "m5": {"tag": LONG_B, "n": 5},
    "m6": {"tag": "Éclair", "n": 6},
    "m7": {"n": 7},
}

INDEX_ROWS = """
async def main():
    async with AsyncSessionLocal() as db:
        if sys.argv[2] == "count":
            rows = await db.execute(text(
                "SELECT count(*) FROM assay_metadata_values WHERE CAST(dataset_id AS TEXT) IN (:a, :b)"
            ), {"a": sys.argv[3], "b": sys.argv[3].replace("-", "")})
            print(json.dumps({"rows": rows.scalar()}))
        elif sys.argv[2] == "forget":  # lose one record's rows, as a trigger that never ran would
            await db.execute(text(
                "DELETE FROM assay_metadata_values WHERE CAST(record_id AS TEXT) IN (:a, :b)"
            ), {"a": sys.argv[3], "b": sys.argv[3].replace("-", "")})
            await db.commit()
        else:  # an existing database the engine has not indexed yet: it builds the index once, at start
            await db.execute(text("DELETE FROM assay_engine_meta WHERE key = 'metadata_schema'"))
            await db.commit()
            await engine.indexes.prepare(db)

asyncio.run(main())
"""


def _metadata_dataset(server: ServerInfo, name: str):
    import argilla as rg

    client = rg.Argilla(api_url=server.url, api_key=server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="ok", labels=["yes", "no"])],
        metadata=[
            rg.TermsMetadataProperty(name="tag"),
            rg.IntegerMetadataProperty(name="n"),
            rg.FloatMetadataProperty(name="x"),
        ],
    )
    dataset = rg.Dataset(name=name, workspace="assay", settings=settings, client=client).create()
    dataset.records.log([rg.Record(id=k, fields={"text": k}, metadata=m) for k, m in METADATA.items()])
    return dataset


def _terms(name: str, values: list) -> dict:
    return {"type": "terms", "scope": {"entity": "metadata", "metadata_property": name}, "values": values}


def _range(name: str, ge=None, le=None) -> dict:
    leaf = {"type": "range", "scope": {"entity": "metadata", "metadata_property": name}}
    return leaf | ({"ge": ge} if ge is not None else {}) | ({"le": le} if le is not None else {})


def test_metadata_filters_and_metrics_follow_record_writes(argilla_server, argilla_python, tmp_path):
    import argilla as rg

    dataset = _metadata_dataset(argilla_server, "metadata-index-writes")
    dataset_id = str(dataset.id)

    def found(*leaves: dict) -> set[str]:
        return _found(argilla_server, dataset_id, *leaves)

    assert found(_terms("tag", ["red"])) == {"m1", "m2"}  # any element of a list matches
    assert found(_terms("tag", ["red", "blue"])) == {"m1", "m2", "m3"}  # m2 counted once
    assert found(_terms("tag", ["red"]), _range("n", ge=2)) == {"m2"}  # two leaves intersect
    status = {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]}
    assert found(_terms("tag", ["blue"]), status) == {"m2", "m3"}  # counted with the records
    assert found(_range("n", ge="x")) == set()  # a bound that is no number matches nothing
    assert found(_terms("tag", ["blue", "Éclair"])) == {"m2", "m3", "m6"}
    assert found(_terms("tag", [LONG_A])) == {"m4"}  # not m5, which shares the indexed prefix
    assert found(_range("tag", ge="b", le="c")) == {"m2", "m3"}
    assert found(_range("tag", ge=LONG_A, le="b")) == {"m4", "m5"}  # a bound longer than the prefix
    assert found(_range("tag", le=LONG_A)) == {"m4"}
    assert found(_range("tag", ge="d")) == {"m1", "m2", "m6"}  # "É" sorts after ASCII, by code point
    assert found(_range("n", ge=2, le=4)) == {"m2", "m3", "m4"}
    assert found(_terms("n", ["3", "5", "nope"])) == {"m3", "m5"}
    assert found(_range("x", le=1.5)) == {"m1", "m2"}
    metrics = _metrics(argilla_server, dataset_id)
    terms = [(v["term"], v["count"]) for v in metrics["tag"]["values"]]
    assert terms == [("blue", 2), ("red", 2), (LONG_A, 1), (LONG_B, 1), ("Éclair", 1)]
    assert metrics["tag"]["total"] == 7 and (metrics["n"]["min"], metrics["n"]["max"]) == (1, 7)
    assert (metrics["x"]["min"], metrics["x"]["max"]) == (0.5, 2.5)

    dataset.records.log([rg.Record(id="m1", fields={"text": "m1"}, metadata={"tag": "green", "n": 10})])
    assert found(_terms("tag", ["red"])) == {"m2"} and found(_terms("tag", ["green"])) == {"m1"}
    assert found(_range("n", ge=9)) == {"m1"} and found(_range("x", le=1)) == set()  # m1 lost its x
    assert _metrics(argilla_server, dataset_id)["n"]["max"] == 10

    dataset.records.delete([record for record in dataset.records if record.id == "m2"])
    assert found(_terms("tag", ["red"])) == set() and found(_terms("tag", ["blue"])) == {"m3"}
    if _postgresql(argilla_server):  # SQLite reads the records' JSON: it has no index to count
        rows = _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + INDEX_ROWS, "count", dataset_id)
        assert rows == {"rows": 2 + 3 + 2 + 2 + 2 + 1}  # m1 (tag, n), m3 (and x), m4, m5, m6, m7 (n)
    dataset.delete()


def _postgresql(server: ServerInfo) -> bool:
    return server.database_url.startswith("postgresql")


def test_metadata_filters_read_the_index_and_a_start_rebuilds_it(argilla_server, argilla_python, tmp_path):
    if not _postgresql(argilla_server):
        pytest.skip("PostgreSQL only: SQLite keeps no metadata index (see the SQLite test below)")
    dataset = _metadata_dataset(argilla_server, "metadata-index-rebuild")
    dataset_id = str(dataset.id)
    blue = _terms("tag", ["blue"])
    assert _found(argilla_server, dataset_id, blue) == {"m2", "m3"}
    m3 = next(record for record in dataset.records if record.id == "m3")
    _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + INDEX_ROWS, "forget", str(m3._server_id))
    assert _found(argilla_server, dataset_id, blue) == {"m2"}  # the filter reads the index, not the JSON
    _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + INDEX_ROWS, "rebuild")
    assert _found(argilla_server, dataset_id, blue) == {"m2", "m3"}  # rebuilt from the records
    assert _found(argilla_server, dataset_id, _range("n", ge=3, le=3)) == {"m3"}
    dataset.delete()


LEGACY_PROBE = """
async def main():
    async with AsyncSessionLocal() as db:
        if sys.argv[2] == "build":  # what an earlier version kept on SQLite
            await db.execute(text("CREATE TABLE assay_metadata_values (record_id CHAR(32), key VARCHAR)"))
            await db.execute(text("CREATE TRIGGER assay_records_metadata_ai AFTER INSERT ON records BEGIN "
                                  "INSERT INTO assay_metadata_values VALUES (NEW.id, 'k'); END"))
            await db.execute(text("INSERT INTO assay_engine_meta (key, value) VALUES ('metadata_schema', '1')"))
            await db.commit()
            await engine.indexes.prepare(db)
        names = await db.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'assay_%metadata%'"))
        print(json.dumps({"left": sorted(names.scalars())}))

asyncio.run(main())
"""


def test_sqlite_keeps_no_metadata_index(argilla_server, argilla_python, tmp_path):
    """On SQLite the engine drops a metadata index an earlier version built (its triggers slowed pushes)."""
    if _postgresql(argilla_server):
        pytest.skip("SQLite only")
    assert _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + LEGACY_PROBE, "look") == {
        "left": []
    }
    found = _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + LEGACY_PROBE, "build")
    assert found == {"left": []}


NESTED = {
    "n1": ["red", "blue"],
    "n2": [["green", "red"], "x"],  # a list inside the list
    "n3": [True, 3],
    "n4": [[["deep"]], []],
    "n5": "plain",
}


def _published_dataset(http: httpx.Client, name: str, metadata: dict[str, str] | None = None) -> str:
    """A published dataset (a text field, a yes/no question, these metadata properties) through the REST API."""
    workspace = http.get("/api/v1/me/workspaces").json()["items"][0]["id"]
    dataset_id = http.post("/api/v1/datasets", json={"name": name, "workspace_id": workspace}).json()["id"]
    base = f"/api/v1/datasets/{dataset_id}"
    label = {"type": "label_selection", "options": [{"value": v, "text": v} for v in ("yes", "no")]}
    parts = [("fields", {"name": "text", "title": "text", "settings": {"type": "text"}}),
             ("questions", {"name": "ok", "title": "ok", "settings": label, "required": True}),
             *(("metadata-properties", {"name": k, "title": k, "settings": {"type": t}}) for k, t in (metadata or {}).items())]
    for part, body in parts:
        created = http.post(f"{base}/{part}", json=body)
        assert created.status_code == 201, created.text
    published = http.put(f"{base}/publish")
    assert published.status_code == 200, published.text
    return dataset_id


def test_metadata_lists_match_element_by_element_at_any_depth(argilla_server):
    """PostgreSQL's metadata index: a terms value that is a list matches by any of its elements, the
    elements of lists inside it included (Elasticsearch flattens arrays), booleans as "true"/"false"; the
    metrics count the same elements. SQLite reads one level of the records' JSON: a list inside the list is
    one element (its JSON text), a boolean reads 1 or 0 (unnesting there cost ~35 % of a metadata query)."""
    with _client(argilla_server) as http:
        dataset_id = _published_dataset(http, "metadata-nested", {"tag": "terms"})
        base = f"/api/v1/datasets/{dataset_id}"
        items = [{"external_id": k, "fields": {"text": k}, "metadata": {"tag": v}} for k, v in NESTED.items()]
        assert http.put(f"{base}/records/bulk", json={"items": items}).status_code == 200

    def found(*values) -> set[str]:
        return _found(argilla_server, dataset_id, _terms("tag", list(values)))

    postgresql = _postgresql(argilla_server)
    assert found("red") == ({"n1", "n2"} if postgresql else {"n1"})
    assert found("green") == ({"n2"} if postgresql else set()) and found("x") == {"n2"}
    assert found("deep") == ({"n4"} if postgresql else set())
    assert found("true") == ({"n3"} if postgresql else set()) and found("3") == {"n3"} and found("plain") == {"n5"}
    terms = {(v["term"], v["count"]) for v in _metrics(argilla_server, dataset_id)["tag"]["values"]}
    if postgresql:
        assert _found(argilla_server, dataset_id, _range("tag", ge="d", le="h")) == {"n2", "n4"}  # green, deep
        assert terms == {("red", 2), ("blue", 1), ("green", 1), ("x", 1), ("true", 1), ("3", 1), ("deep", 1),
                         ("plain", 1)}
    else:
        assert terms == {("red", 1), ("blue", 1), ('["green","red"]', 1), ("x", 1), ("1", 1), ("3", 1),
                         ('[["deep"]]', 1), ("[]", 1), ("plain", 1)}


LATE = {"l1": 3, "l2": "3", "l3": "x", "l4": [1, "y"], "l5": 2.5}


def test_metadata_declared_after_the_records_is_filtered_and_measured(argilla_server, argilla_python, tmp_path):
    """Metadata is indexed whether or not a property names it yet: properties declared after the records were
    written filter and measure them at once, with every kind of value under one key (a terms property
    accepts numbers; a number property reads only the numbers); on PostgreSQL through both partial btrees."""
    with _client(argilla_server) as http:
        dataset_id = _published_dataset(http, "metadata-late")
        base = f"/api/v1/datasets/{dataset_id}"
        items = [{"external_id": k, "fields": {"text": k}, "metadata": {"late": v, "late_n": v}} for k, v in LATE.items()]
        assert http.put(f"{base}/records/bulk", json={"items": items}).status_code == 200
        for name, kind in (("late", "terms"), ("late_n", "integer")):
            created = http.post(f"{base}/metadata-properties", json={"name": name, "title": name, "settings": {"type": kind}})
            assert created.status_code == 201, created.text

    def found(*leaves: dict) -> set[str]:
        return _found(argilla_server, dataset_id, *leaves)

    assert found(_terms("late", ["3"])) == {"l1", "l2"}  # the number 3 by value, the string "3" by text
    assert found(_terms("late", ["1"])) == {"l4"} and found(_terms("late", ["y", "x"])) == {"l3", "l4"}
    assert found(_range("late_n", ge=2)) == {"l1", "l5"} and found(_range("late_n", le=1)) == {"l4"}
    assert found(_range("late_n", ge=2), _terms("late", ["3"])) == {"l1"}
    metrics = _metrics(argilla_server, dataset_id)
    assert (metrics["late_n"]["min"], metrics["late_n"]["max"]) == (1, 3)
    terms = [(v["term"], v["count"]) for v in metrics["late"]["values"]]
    assert terms == [("3", 2), ("1", 1), ("2.5", 1), ("x", 1), ("y", 1)] and metrics["late"]["total"] == 6
    if _postgresql(argilla_server):  # the index's triggers run without JIT (compiling cost more than indexing)
        settings = _probe(argilla_server, argilla_python, tmp_path, LOAD_ENGINE + TRIGGER_SETTINGS)
        assert len(settings) == 6 and all(config == ["jit=off"] for config in settings.values()), settings


TRIGGER_SETTINGS = """
async def main():
    async with AsyncSessionLocal() as db:
        rows = await db.execute(text("SELECT p.proname, p.proconfig FROM pg_trigger AS t "
                                     "JOIN pg_proc AS p ON p.oid = t.tgfoid WHERE t.tgname LIKE 'assay_records_%'"))
        print(json.dumps({name: config for name, config in rows}))

asyncio.run(main())
"""


# The similarity cache's saved blocks -----------------------------------------------------------------------

VECTOR_PROBE = """
from argilla_server.models import Dataset, VectorSettings
similarity, snapshots = engine.similarity, engine.snapshots
snapshots.SAVE_MIN_ROWS = 1  # save even this small block
decoded = []  # vectors of this dataset's block read from the database's JSON
fetch = similarity._fetch_vectors

async def counting(db, settings_id, keys, dims):
    fetched = await fetch(db, settings_id, keys, dims)
    if str(settings_id) == sys.argv[4]:
        decoded.append(len(fetched))
    return fetched

similarity._fetch_vectors = counting

async def main():
    async with AsyncSessionLocal() as db:
        dataset = await Dataset.get(db, uuid.UUID(sys.argv[2]))
        settings = await VectorSettings.get_by(db, name="emb", dataset_id=dataset.id)
    search = await engine.AssayDbSearchEngine.new_instance()
    if sys.argv[3] == "forget":
        await search.delete_index(dataset)
        print(json.dumps({}))
        return
    blocks, vectors = await engine.warm_vector_cache()
    warmed = sum(decoded)
    found = await search.similarity_search(dataset, settings, value=json.loads(sys.argv[3]), max_results=50)
    await asyncio.gather(*similarity._SAVING)
    print(json.dumps({"decoded": warmed, "after_warm": sum(decoded) - warmed, "blocks": blocks,
                      "items": [[str(i.record_id), i.score] for i in found.items]}))

asyncio.run(main())
"""

QUERY = [1.0, 0.5, -0.25, 0.0]


def test_saved_vector_blocks_restore_a_cold_cache_and_reconcile_writes(
    argilla_server, argilla_python, tmp_path
):
    import argilla as rg

    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="ok", labels=["yes", "no"])],
        vectors=[rg.VectorField(name="emb", dimensions=4)],
    )
    dataset = rg.Dataset(
        name="vector-snapshots", workspace="assay", settings=settings, client=client
    ).create()
    rng = np.random.default_rng(11)
    stored = {f"s{i:02d}": rng.standard_normal(4).astype(np.float32).tolist() for i in range(30)}
    dataset.records.log([rg.Record(id=k, fields={"text": k}, vectors={"emb": v}) for k, v in stored.items()])
    ids = {record.id: str(record._server_id) for record in dataset.records}
    folder = tmp_path / "snapshots"

    settings_id = str(dataset.settings.vectors["emb"].id)

    def probe(action: str = json.dumps(QUERY)) -> dict:
        return _probe(
            argilla_server,
            argilla_python,
            tmp_path,
            LOAD_ENGINE + VECTOR_PROBE,
            str(dataset.id),
            action,
            settings_id,
            ASSAY_VECTOR_SNAPSHOTS=str(folder),
        )

    def expected() -> list[tuple[str, float]]:
        q = np.asarray(QUERY)
        scored = [
            (ids[k], (1 + float(q @ np.asarray(v) / np.linalg.norm(q) / np.linalg.norm(v))) / 2)
            for k, v in stored.items()
        ]
        return sorted(scored, key=lambda pair: -pair[1])

    def check(result: dict) -> None:
        assert [rid for rid, _ in result["items"]] == [rid for rid, _ in expected()]
        assert [s for _, s in result["items"]] == pytest.approx([s for _, s in expected()])

    cold = probe()
    assert cold["blocks"] >= 1 and cold["decoded"] == 30 and cold["after_warm"] == 0  # warm-up did the work
    check(cold)
    assert len(list(folder.glob(f"{dataset.id}-*.vectors"))) == 1
    restored = probe()  # a fresh process: the block comes from the file, no JSON is parsed
    assert restored["decoded"] == 0 and restored["items"] == cold["items"]

    stored["s03"] = [v * -3 for v in QUERY]  # an updated vector: now the very last
    dataset.records.log([rg.Record(id="s03", fields={"text": "s03"}, vectors={"emb": stored["s03"]})])
    dataset.records.delete([record for record in dataset.records if record.id == "s05"])
    stored.pop("s05")
    reconciled = probe()
    assert reconciled["decoded"] == 1 and reconciled["items"][-1][0] == ids["s03"]  # only the new version
    check(reconciled)

    for path in folder.glob("*.vectors"):
        path.write_bytes(b"not a snapshot")
    unreadable = probe()  # ignored: everything is decoded again
    assert unreadable["decoded"] == 29
    check(unreadable)
    probe("forget")  # deleting the dataset removes its files
    assert list(folder.glob(f"{dataset.id}-*.vectors")) == []
    dataset.delete()


def test_server_warms_the_vector_cache_at_start(argilla_server):
    log = argilla_server.home / "logs" / "server.log"
    deadline = time.monotonic() + 30
    while "assay: vector cache warm (" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "assay: vector cache warm (" in log.read_text()
