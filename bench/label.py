"""Review benchmark: `assay label push` throughput with MiniLM vectors, and search latency on a large dataset.

Starts a private embedded Argilla server (assay's database-backed search engine, SQLite) in a temporary
directory, then:

1. push: a curated version of `--push` GSM8K rows through `assay.label.push.push` (with MiniLM vectors
   unless --no-vectors): end-to-end records/s (embedding included), plus the embedding rate alone on a sample;
2. search: a dataset of `--search` records with random 384-d vectors (logged with the SDK's bulk upsert,
   records/s reported), then `--repeat` timings of each query kind the UI and SDK send: p50 / p95 ms.

    .venv/bin/python bench/label.py                          # 10k pushed with vectors, 50k searched
    .venv/bin/python bench/label.py --push 1000 --search 5000 --repeat 10
    .venv/bin/python bench/label.py --push 10000 --no-vectors --search 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assay.label.server import add_user, procs, start_server, stop_server  # noqa: E402
from assay.workspace import Workspace  # noqa: E402

GSM8K = Path("/work/shared/data/gsm8k/train.jsonl")
DIMS = 384


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


def bench_push(ws: Workspace, n: int, embed_sample: int, vectors: bool) -> dict:
    from assay.label.push import push

    frame = pl.DataFrame(gsm8k_rows(n))
    vid = ws.datasets.write(frame, kind="curated", config={"quality": {"min_chars": 20, "min_words": 5}}).version.id
    out = embed_rate(frame, embed_sample) if vectors else {}
    began = time.perf_counter()
    result = push(ws, vid, dataset="bench-push", vectors=vectors)
    total = time.perf_counter() - began
    return {"records": result.added, "vectors": vectors, "seconds_upload_loop": result.seconds,
            "seconds_total": round(total, 2), "records_per_s": result.records_per_s, **out}


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


def bench_search_dataset(url: str, key: str, n: int) -> tuple[object, dict]:
    import argilla as rg

    client = rg.Argilla(api_url=url, api_key=key, timeout=300, trust_env=False)
    settings = rg.Settings(
        fields=[rg.TextField(name="prompt"), rg.TextField(name="response")],
        questions=[rg.LabelQuestion(name="decision", labels=["approve", "reject", "edit"])],
        metadata=[rg.TermsMetadataProperty(name="split"), rg.IntegerMetadataProperty(name="q_chars")],
        vectors=[rg.VectorField(name="embedding", dimensions=DIMS)],
    )
    dataset = rg.Dataset(name="bench-search", workspace="assay", settings=settings, client=client).create()
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
        print(f"  logged {start + len(records):,}/{n:,}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - began
    return dataset, {"records": n, "seconds": round(seconds, 1), "records_per_s": round(n / seconds, 1)}


def timed(http: httpx.Client, method: str, path: str, repeat: int, **kwargs) -> dict:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = http.request(method, path, **kwargs)
        times.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[max(0, int(0.95 * len(times)) - 1)], 1)}


def bench_queries(url: str, owner_key: str, annotator_key: str, dataset_id: str, repeat: int) -> dict:
    rng = np.random.default_rng(1)
    vec = rng.standard_normal(DIMS)
    vec = (vec / np.linalg.norm(vec)).tolist()
    search = f"/api/v1/datasets/{dataset_id}/records/search"
    train = {"type": "and", "and": [{"type": "terms", "values": ["train"], "scope": {"entity": "metadata", "metadata_property": "split"}}]}
    similar = {"query": {"vector": {"name": "embedding", "value": vec, "order": "most_similar"}}}
    out = {}
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=300, trust_env=False) as http:
        out["similarity_top10"] = timed(http, "POST", search, repeat, params={"limit": 10}, json=similar)
        out["similarity_top10_filtered"] = timed(http, "POST", search, repeat, params={"limit": 10}, json={**similar, "filters": train})
        out["text_query_top10"] = timed(http, "POST", search, repeat, params={"limit": 10}, json={"query": {"text": {"q": "apples"}}})
        rng_filter = {"filters": {"type": "and", "and": [{"type": "range", "ge": 300, "le": 400, "scope": {"entity": "metadata", "metadata_property": "q_chars"}}]}}
        out["metadata_range_top50"] = timed(http, "POST", search, repeat, params={"limit": 50}, json=rng_filter)
        out["progress"] = timed(http, "GET", f"/api/v1/datasets/{dataset_id}/progress", repeat)
    pending = {"filters": {"type": "and", "and": [
        {"type": "terms", "values": ["pending"], "scope": {"entity": "response", "property": "status"}},
        {"type": "terms", "values": ["pending"], "scope": {"entity": "record", "property": "status"}}]}}
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": annotator_key}, timeout=300, trust_env=False) as http:
        out["annotator_pending_queue"] = timed(http, "POST", f"/api/v1/me/datasets/{dataset_id}/records/search", repeat,
                                               params={"limit": 1}, json=pending)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--push", type=int, default=10_000, help="rows pushed (0: skip)")
    parser.add_argument("--vectors", action=argparse.BooleanOptionalAction, default=True, help="push with MiniLM vectors")
    parser.add_argument("--search", type=int, default=50_000, help="records in the search dataset (0: skip)")
    parser.add_argument("--repeat", type=int, default=20, help="timings per query kind")
    parser.add_argument("--embed-sample", type=int, default=1000, help="texts for the embedding-only rate")
    args = parser.parse_args()
    venv = Path(os.environ.get("ASSAY_ARGILLA_VENV") or REPO / ".venv-argilla")
    redis = os.environ.get("ARGILLA_REDIS_URL") or "redis://127.0.0.1:6379/12"
    with tempfile.TemporaryDirectory(prefix="assay-bench-label-") as tmp:
        ws, _ = Workspace.init(Path(tmp) / "ws")
        home = ws.root / "argilla"
        info = start_server(home, port=procs.free_port(), redis_url=redis, venv_dir=venv, progress=None)
        results: dict = {"server": {"database": "sqlite", "startup_s": info.startup_seconds}}
        try:
            if args.push:
                print(f"pushing {args.push:,} rows (vectors: {args.vectors}) ...", file=sys.stderr, flush=True)
                results["push"] = bench_push(ws, args.push, min(args.embed_sample, args.push), args.vectors)
            if args.search:
                print(f"logging {args.search:,} records with random vectors ...", file=sys.stderr, flush=True)
                dataset, results["search_dataset"] = bench_search_dataset(info.url, info.api_key, args.search)
                annotator = add_user(home, f"bench{random.randint(0, 10**6)}")
                results["latency"] = bench_queries(info.url, info.api_key, annotator["api_key"], str(dataset.id), args.repeat)
        finally:
            stop_server(home)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
