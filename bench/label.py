"""Review benchmark: `assay label push` throughput and the latency of every query the review UI sends.

Starts a private embedded Argilla server (assay's database-backed search engine) on SQLite or, with
`--database postgresql`, on a fresh PostgreSQL database, then:

1. push: a curated version of `--push` GSM8K rows through `assay.label.push.push` (no vectors unless
   --vectors, which adds MiniLM embeddings and reports the embedding rate alone on a sample): records/s,
   CPU ms per record of the server process, of the client and (PostgreSQL) of the database's backends,
   and the load average before and after (a shared machine's load changes the rate, much less the CPU);
2. search: a dataset of `--search` records with random 384-d vectors (logged with the SDK's bulk upsert,
   records/s reported), one annotator's responses on `--responses` of them (submitted, draft, discarded),
   then one untimed call and `--repeat` timings of each query kind: p50 / p95 ms, and the load average
   before and after the queries.

    .venv/bin/python bench/label.py                                  # 10k pushed, 100k searched, SQLite
    .venv/bin/python bench/label.py --database postgresql            # the same on PostgreSQL
    .venv/bin/python bench/label.py --push 1000 --search 5000 --repeat 10
    .venv/bin/python bench/label.py --push 0 --home /tmp/bench-home  # keep (and later reuse) the dataset
    .venv/bin/python bench/label.py --table before=a.json after=b.json  # saved results side by side

It prints the results as JSON (also written to `--out`) and a markdown table of p50 / p95 per query kind.

PostgreSQL comes from $ASSAY_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark creates its own database there and drops it afterwards (kept with --home).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assay.label.server import add_user, ensure_server_env, procs, server_venv_dir, start_server, stop_server  # noqa: E402
from assay.workspace import Workspace  # noqa: E402

GSM8K = Path("/work/shared/data/gsm8k/train.jsonl")
DIMS = 384
DATASET = "bench-search"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOAD = "load_avg_before_after"  # the 1, 5 and 15-minute load averages before and after a part


def gsm8k_rows(n: int) -> list[dict]:
    """n prompt/response rows from GSM8K (cycled with a suffix when n exceeds the file)."""
    base = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()]
    rows = []
    for i in range(n):
        item = base[i % len(base)]
        suffix = f" (variant {i // len(base)})" if i >= len(base) else ""
        prompt, response = item["question"] + suffix, item["answer"]
        rows.append({"id": f"b{i:06d}", "source": "gsm8k", "source_line": i % len(base) + 1, "prompt": prompt,
                     "response": response, "split": "val" if i % 10 == 0 else "train",
                     "q_chars": len(prompt) + len(response), "q_words": len((prompt + " " + response).split())})
    return rows


def bench_push(ws: Workspace, n: int, embed_sample: int, vectors: bool, server_pid: int,
               pg_backends: Callable[[], list[int]] | None) -> dict:
    """Push n rows; records/s, and CPU ms per record of the server process, of this (client) process and,
    on PostgreSQL, of the benchmark database's backends (`pg_backends` lists their pids: they run the SQL
    and the engine's triggers)."""
    from assay.label.push import push

    frame = pl.DataFrame(gsm8k_rows(n))
    vid = ws.datasets.write(frame, kind="curated", config={"quality": {"min_chars": 20, "min_words": 5}}).version.id
    out = embed_rate(frame, embed_sample) if vectors else {}
    load_before = os.getloadavg()
    backends = {pid: cpu_seconds([pid]) for pid in pg_backends()} if pg_backends else {}
    server_cpu, client_cpu = cpu_seconds([server_pid]), time.process_time()
    began = time.perf_counter()
    result = push(ws, vid, dataset="bench-push", vectors=vectors)
    total = time.perf_counter() - began
    per_record = {"server": cpu_seconds([server_pid]) - server_cpu, "client": time.process_time() - client_cpu}
    if pg_backends:
        per_record["postgresql"] = sum(cpu_seconds([pid]) - backends.get(pid, 0.0) for pid in {*backends, *pg_backends()})
    added = max(1, result.added)
    return {"records": result.added, "vectors": vectors, "seconds_upload_loop": result.seconds,
            "seconds_total": round(total, 2), "records_per_s": result.records_per_s,
            "cpu_ms_per_record": {k: round(1000 * v / added, 3) for k, v in per_record.items()},
            LOAD: [round(x, 2) for x in (*load_before, *os.getloadavg())], **out}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (Linux /proc; 0 for any that is gone)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def pg_backend_pids(python: Path, admin_url: str, database: str) -> list[int]:
    """Pids of the PostgreSQL processes connected to `database` (this machine's server)."""
    code = ("import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); k = c.cursor(); "
            "k.execute('SELECT pid FROM pg_stat_activity WHERE datname = %s', (sys.argv[2],)); "
            "print(' '.join(str(r[0]) for r in k.fetchall()))")
    out = subprocess.run([str(python), "-c", code, admin_url, database], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return [int(pid) for pid in out.split()]


def embed_rate(frame: pl.DataFrame, sample: int) -> dict:
    """MiniLM on its own: model load time and texts/s on the first `sample` rows."""
    from assay.label.embed import Embedder

    texts = (frame["prompt"] + "\n\n" + frame["response"]).to_list()[:sample]
    began = time.perf_counter()
    embedder = Embedder()
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    embedder(texts)
    rate = len(texts) / (time.perf_counter() - began)
    return {"embed_records_per_s": round(rate, 1), "model_load_s": round(loaded, 2), "embed_device": embedder.device}


def existing_dataset(url: str, key: str) -> dict | None:
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": key}, timeout=60, trust_env=False) as http:
        for item in http.get("/api/v1/me/datasets").json()["items"]:
            if item["name"] == DATASET:
                return item
    return None


def bench_search_dataset(url: str, key: str, n: int) -> tuple[str, dict]:
    import argilla as rg

    client = rg.Argilla(api_url=url, api_key=key, timeout=300, trust_env=False)
    settings = rg.Settings(
        fields=[rg.TextField(name="prompt"), rg.TextField(name="response")],
        questions=[rg.LabelQuestion(name="decision", labels=["approve", "reject", "edit"])],
        metadata=[rg.TermsMetadataProperty(name="split"), rg.IntegerMetadataProperty(name="q_chars")],
        vectors=[rg.VectorField(name="embedding", dimensions=DIMS)],
    )
    dataset = rg.Dataset(name=DATASET, workspace="assay", settings=settings, client=client).create()
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    rows = gsm8k_rows(n)
    for start in range(0, n, 500):
        vectors = rng.standard_normal((min(500, n - start), DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        records = []
        for row, vec in zip(rows[start : start + 500], vectors, strict=True):
            record = rg.Record(id=row["id"], fields={"prompt": row["prompt"], "response": row["response"]},
                               metadata={"split": row["split"], "q_chars": row["q_chars"]}, vectors={"embedding": vec.tolist()})
            record.dataset = dataset
            records.append(record.api_model())
        client.api.records.bulk_upsert(dataset_id=dataset.id, records=records)
        if (start // 500) % 20 == 19:
            print(f"  logged {start + len(records):,}/{n:,}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - began
    return str(dataset.id), {"records": n, "seconds": round(seconds, 1), "records_per_s": round(n / seconds, 1)}


def record_ids(http: httpx.Client, dataset_id: str, offsets: list[int], per: int) -> list[str]:
    ids = []
    for offset in offsets:
        page = http.get(f"/api/v1/datasets/{dataset_id}/records", params={"offset": offset, "limit": per}).json()
        ids += [item["id"] for item in page["items"]]
    return ids


def seed_responses(url: str, annotator_key: str, ids: list[str]) -> dict:
    """The annotator answers `ids`: 2/3 submitted, 1/6 draft, 1/6 discarded (through the UI's bulk call)."""
    statuses = {"submitted": 0, "draft": 0, "discarded": 0}
    items = []
    for i, record_id in enumerate(ids):
        status = "submitted" if i % 6 < 4 else "draft" if i % 6 == 4 else "discarded"
        values = {} if status == "discarded" else {"decision": {"value": ["approve", "reject", "edit"][i % 3]}}
        items.append({"record_id": record_id, "status": status, "values": values})
        statuses[status] += 1
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": annotator_key}, timeout=300, trust_env=False) as http:
        for start in range(0, len(items), 100):
            response = http.post("/api/v1/me/responses/bulk", json={"items": items[start : start + 100]})
            response.raise_for_status()
    return statuses


def timed(http: httpx.Client, method: str, path: str, repeat: int, **kwargs) -> dict:
    """One untimed-as-p50 first call (caches warm up), then `repeat` timings: first / p50 / p95 ms."""
    began = time.perf_counter()
    http.request(method, path, **kwargs).raise_for_status()
    first = (time.perf_counter() - began) * 1000
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = http.request(method, path, **kwargs)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    times.sort()
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
    return {"first_ms": round(first, 1), "p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1)}


def _terms(scope: dict, values: list) -> dict:
    return {"type": "terms", "values": values, "scope": scope}


def bench_queries(url: str, owner_key: str, annotator_key: str, dataset_id: str, repeat: int, only: set[str]) -> dict:
    rng = np.random.default_rng(1)
    vec = rng.standard_normal(DIMS)
    vec = (vec / np.linalg.norm(vec)).tolist()
    search = f"/api/v1/datasets/{dataset_id}/records/search"
    me_search = f"/api/v1/me/datasets/{dataset_id}/records/search"
    split = {"entity": "metadata", "metadata_property": "split"}
    train = {"type": "and", "and": [_terms(split, ["train"])]}
    similar = {"query": {"vector": {"name": "embedding", "value": vec, "order": "most_similar"}}}
    response_status = {"entity": "response", "property": "status"}

    def me_status(status: str) -> dict:
        leaves = [_terms(response_status, [status])]
        if status == "pending":  # what the UI adds for its pending queue
            leaves.append(_terms({"entity": "record", "property": "status"}, ["pending"]))
        return {"filters": {"type": "and", "and": leaves}}

    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=300, trust_env=False) as http:
        first_id = http.get(f"/api/v1/datasets/{dataset_id}/records", params={"limit": 1, "offset": 500}).json()["items"][0]["id"]
        properties = {p["name"]: p["id"] for p in http.get(f"/api/v1/me/datasets/{dataset_id}/metadata-properties").json()["items"]}
        owner_queries = {
            "text_query_top10": ("POST", search, {"params": {"limit": 10}, "json": {"query": {"text": {"q": "apples"}}}}),
            "text_query_field_top10": ("POST", search, {"params": {"limit": 10},
                                                        "json": {"query": {"text": {"q": "apples", "field": "prompt"}}}}),
            "text_query_two_terms_top10": ("POST", search, {"params": {"limit": 10},
                                                            "json": {"query": {"text": {"q": "eggs dozen"}}}}),
            "metadata_terms_top50": ("POST", search, {"params": {"limit": 50}, "json": {"filters": train}}),
            "metadata_range_top50": ("POST", search, {"params": {"limit": 50}, "json": {"filters": {"type": "and", "and": [
                {"type": "range", "ge": 300, "le": 400, "scope": {"entity": "metadata", "metadata_property": "q_chars"}}]}}}),
            "similarity_top10": ("POST", search, {"params": {"limit": 10}, "json": similar}),
            "similarity_top10_filtered": ("POST", search, {"params": {"limit": 10}, "json": {**similar, "filters": train}}),
            "similarity_top10_by_record": ("POST", search, {"params": {"limit": 10}, "json": {"query": {"vector": {
                "name": "embedding", "record_id": first_id, "order": "most_similar"}}}}),
            "dataset_progress": ("GET", f"/api/v1/datasets/{dataset_id}/progress", {}),
            "metadata_metrics_terms": ("GET", f"/api/v1/metadata-properties/{properties['split']}/metrics", {}),
            "metadata_metrics_integer": ("GET", f"/api/v1/metadata-properties/{properties['q_chars']}/metrics", {}),
        }
        out = {}
        for name, (method, path, kwargs) in owner_queries.items():
            if not only or name in only:
                out[name] = timed(http, method, path, repeat, **kwargs)
                print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    me_queries = {
        **{f"me_{status}_queue": ("POST", me_search, {"params": {"limit": 10}, "json": me_status(status)})
           for status in ("pending", "submitted", "draft", "discarded")},
        "me_all_random_order": ("POST", me_search, {"params": {"limit": 10}, "json": {}}),
        "me_metrics": ("GET", f"/api/v1/me/datasets/{dataset_id}/metrics", {}),
    }
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": annotator_key}, timeout=300, trust_env=False) as http:
        for name, (method, path, kwargs) in me_queries.items():
            if not only or name in only:
                out[name] = timed(http, method, path, repeat, **kwargs)
                print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def _pg_admin(python: Path, admin_url: str, sql: str) -> None:
    code = "import sys, psycopg2; c = psycopg2.connect(sys.argv[1]); c.autocommit = True; c.cursor().execute(sys.argv[2])"
    subprocess.run([str(python), "-c", code, admin_url, sql], check=True, capture_output=True, timeout=120)


def pg_database(python: Path, home: Path, keep: bool) -> tuple[str, str | None]:
    """(asyncpg URL, name to drop afterwards or None): a fresh database, or the one a kept home names."""
    admin = os.environ.get("ASSAY_TEST_PG_URL", DEFAULT_PG)
    marker = home / "bench-pg-database.txt"
    if marker.exists():
        name = marker.read_text().strip()
    else:
        name = f"assay_bench_{secrets.token_hex(4)}"
        _pg_admin(python, admin, f'CREATE DATABASE "{name}"')
        if keep:
            home.mkdir(parents=True, exist_ok=True)
            marker.write_text(name + "\n")
    url = urlunsplit(urlsplit(admin)._replace(scheme="postgresql+asyncpg", path=f"/{name}"))
    return url, None if keep else name


def run(args: argparse.Namespace, root: Path) -> dict:
    venv = Path(os.environ.get("ASSAY_ARGILLA_VENV") or server_venv_dir())
    python = ensure_server_env(venv, progress=None)
    redis = os.environ.get("ARGILLA_REDIS_URL") or "redis://127.0.0.1:6379/12"
    ws_root = root / "ws"
    ws = Workspace.open(ws_root) if (ws_root / "assay.toml").exists() else Workspace.init(ws_root)[0]
    home = ws.root / "argilla"
    database_url, drop = (None, None)
    if args.database == "postgresql":
        database_url, drop = pg_database(python, root, keep=args.home is not None)
    info = start_server(home, port=procs.free_port(), database_url=database_url, redis_url=redis, venv_dir=venv,
                        progress=None)
    results: dict = {"server": {"database": args.database, "startup_s": info.startup_seconds, "cores": os.cpu_count(),
                                "vector_warm_s": wait_vector_warm(home)}}
    try:
        if args.push:
            print(f"pushing {args.push:,} rows (vectors: {args.vectors}) ...", file=sys.stderr, flush=True)
            backends = None
            if database_url is not None:
                name = urlsplit(database_url).path.lstrip("/")
                admin = os.environ.get("ASSAY_TEST_PG_URL", DEFAULT_PG)
                backends = lambda: pg_backend_pids(python, admin, name)  # noqa: E731
            results["push"] = bench_push(ws, args.push, min(args.embed_sample, args.push), args.vectors, info.pid,
                                         backends)
            print(f"  {results['push']}", file=sys.stderr, flush=True)
        if args.search:
            results["latency"] = search_part(args, info, home)
    finally:
        stop_server(home)
        if drop:
            _pg_admin(python, os.environ.get("ASSAY_TEST_PG_URL", DEFAULT_PG), f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)')
    return results


def wait_vector_warm(home: Path, timeout: float = 300) -> float | None:
    """Seconds from the server being ready until its vector-cache warm-up (started with it) is done, so the
    timings below measure queries, not queries competing with the warm-up; None: no warm-up logged."""
    log, began = home / "logs" / "server.log", time.perf_counter()
    while time.perf_counter() - began < timeout:
        if "assay: vector cache " in log.read_text(errors="replace"):
            return round(time.perf_counter() - began, 2)
        time.sleep(0.1)
    return None


def search_part(args: argparse.Namespace, info, home: Path) -> dict:
    found = existing_dataset(info.url, info.api_key)
    users_file = home.parent / "bench-annotator.json"
    if found is None:
        print(f"logging {args.search:,} records with random vectors ...", file=sys.stderr, flush=True)
        dataset_id, logged = bench_search_dataset(info.url, info.api_key, args.search)
        annotator = add_user(home, f"bench{secrets.token_hex(3)}")
        with httpx.Client(base_url=info.url, headers={"X-Argilla-Api-Key": info.api_key}, timeout=300, trust_env=False) as http:
            per = max(1, args.responses // 5)
            offsets = [int(args.search * f) for f in (0.0, 0.2, 0.4, 0.6, 0.8)]
            ids = record_ids(http, dataset_id, offsets, per)
        logged["responses"] = seed_responses(info.url, annotator["api_key"], ids)
        users_file.write_text(json.dumps({"api_key": annotator["api_key"], "dataset_id": dataset_id, "logged": logged}))
    else:
        saved = json.loads(users_file.read_text())
        annotator, dataset_id, logged = {"api_key": saved["api_key"]}, saved["dataset_id"], {**saved["logged"], "reused": True}
    only = set(args.only.split(",")) if args.only else set()
    out = {"dataset": logged}
    load_before = os.getloadavg()
    out.update(bench_queries(info.url, info.api_key, annotator["api_key"], dataset_id, args.repeat, only))
    out[LOAD] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    return out


def _cell(result: dict, name: str) -> str:
    if name == "push":
        push = result.get("push")
        return f"{push['records_per_s']:,.0f} rec/s" if push else ""
    timing = result.get("latency", {}).get(name)
    return f"{timing['p50_ms']:,.0f} / {timing['p95_ms']:,.0f}" if timing else ""


def table(results: dict[str, dict]) -> str:
    """A markdown table: one row per query kind (p50 / p95 ms) and push rate, one column per labelled run."""
    names = ["push"]
    for result in results.values():
        names += [n for n in result.get("latency", {}) if n not in ("dataset", LOAD) and n not in names]
    lines = ["| query (p50 / p95 ms) | " + " | ".join(results) + " |", "| --- |" + " ---: |" * len(results)]
    for name in names:
        cells = [_cell(result, name) for result in results.values()]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--push", type=int, default=10_000, help="rows pushed through assay.label.push (0: skip)")
    parser.add_argument("--vectors", action=argparse.BooleanOptionalAction, default=False, help="push with MiniLM vectors")
    parser.add_argument("--search", type=int, default=100_000, help="records in the search dataset (0: skip)")
    parser.add_argument("--responses", type=int, default=1500, help="records the annotator has answered")
    parser.add_argument("--repeat", type=int, default=20, help="timings per query kind")
    parser.add_argument("--only", default="", help="comma-separated query kinds to time (default: all)")
    parser.add_argument("--embed-sample", type=int, default=1000, help="texts for the embedding-only rate")
    parser.add_argument("--home", type=Path, default=None, help="keep the workspace, server and database here; reuse them next time")
    parser.add_argument("--out", type=Path, default=None, help="also write the results (JSON) to this file")
    parser.add_argument("--table", nargs="+", metavar="LABEL=RESULTS.json", default=None,
                        help="run nothing: print one table of saved results side by side (e.g. before/after)")
    args = parser.parse_args()
    if args.table:
        runs = dict(item.split("=", 1) for item in args.table)
        print(table({label: json.loads(Path(path).read_text()) for label, path in runs.items()}))
        return
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=True)
        results = run(args, args.home.absolute())
    else:
        with tempfile.TemporaryDirectory(prefix="assay-bench-label-") as tmp:
            results = run(args, Path(tmp))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(table({args.database: results}), file=sys.stderr)
    for part, name in (("push", "push"), ("latency", "queries")):
        load = results.get(part, {}).get(LOAD)
        if load:
            print(f"load average (1, 5, 15 min) before / after the {name}: {load[:3]} / {load[3:]}", file=sys.stderr)


if __name__ == "__main__":
    main()
