"""The Ray engine on real local Ray clusters (one started in-process, one by `ray start --head` and
joined by address): the version of the local engine, id for id, and clean failures (a killed worker,
bad input, no Ray installed, an unreachable cluster)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import psutil
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.curate.config import CurateConfig
from assay.curate.minhash_lsh import candidate_pairs
from assay.curate.spill import Parts, Spill
from assay.errors import AssayError
from assay.workspace import Workspace, staging_leftovers
from tests.curate.test_streaming import CONFIGS, _corpus, _run

ray = pytest.importorskip("ray", reason="the Ray engine's tests need assay[ray]")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs for the module (the engine joins an initialised session)."""
    # "local": a new cluster even where another (or a stale record of one) exists on the machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _strip_seconds(counts: dict) -> dict:
    return {**counts, "steps": [{k: v for k, v in s.items() if k != "seconds"} for s in counts["steps"]]}


@pytest.mark.parametrize("options", CONFIGS.values(), ids=list(CONFIGS))
def test_ray_run_writes_the_local_engines_version(cluster, tmp_path: Path, options: dict) -> None:
    files = _corpus(tmp_path)
    cfg = CurateConfig.model_validate({**options, "read": {"chunk_rows": 7}})
    local_ws, local = _run(tmp_path, "local", files, cfg)
    ray_ws, remote = _run(tmp_path, "ray", files, cfg.model_copy(update={"engine": "ray"}))
    # The engine is not part of the recorded config: same inputs and config, same version id.
    assert remote.version_id == local.version_id
    assert _strip_seconds(remote.counts) == _strip_seconds(local.counts)
    a, b = local_ws.datasets.get(local.version_id), ray_ws.datasets.get(remote.version_id)
    assert b.data().collect().equals(a.data().collect())
    assert b.manifest["digests"] == a.manifest["digests"]
    assert remote.counts["rejected"] > 0 and remote.counts["quarantined"] == 3
    assert not staging_leftovers(ray_ws.layout)


def test_dedup_against_a_version_writes_the_local_engines_version(cluster, tmp_path: Path, monkeypatch) -> None:
    """Candidates against an existing version are measured in tasks too: the driver's own candidate
    reader is disabled for the Ray run."""
    from assay.curate import minhash_texts
    from assay.curate.pipeline import curate

    files = _corpus(tmp_path)
    results = {}
    for engine in ("local", "ray"):
        ws, _ = Workspace.init(tmp_path / engine)
        first = curate(ws, files[:1], CurateConfig.model_validate({"steps": ["normalize"]}))
        cfg = CurateConfig.model_validate({"engine": engine, "read": {"chunk_rows": 7}, "near_dedup": {"against": [first.version_id]}})
        if engine == "ray":
            monkeypatch.setattr(minhash_texts, "CandidateTexts", None)  # calling it would fail the run
        results[engine] = curate(ws, files, cfg)
    assert results["ray"].version_id == results["local"].version_id
    removed = next(s for s in results["ray"].counts["steps"] if s["step"] == "near_dedup")["removed"]
    assert removed.get("near_duplicate_of_existing", 0) > 0


def test_the_band_shuffle_finds_the_local_candidate_pairs(cluster, tmp_path: Path) -> None:
    from assay.curate.ray_graph import RayBands

    rng = np.random.default_rng(0)
    n, bands = 700, 5
    # Few distinct keys per band (salted by band, as real band keys are): buckets of every size,
    # some above MAX_ALL_PAIRS (a star of pairs), none shared across bands.
    keys = np.stack([rng.integers(0, 30, n) + 1000 * b for b in range(bands)]).astype(np.uint64)
    frames = [pl.DataFrame({f"_b{b}": keys[b, s : s + 64] for b in range(bands)}) for s in range(0, n, 64)]
    parts = _blocks_in_ray(tmp_path, frames)
    anchor = rng.integers(0, 2**63, n).astype(np.uint64)
    docs = np.sort(rng.choice(n, 400, replace=False))
    local_i, local_j = candidate_pairs(keys[:, docs], docs, anchor)
    ray_i, ray_j = candidate_pairs(RayBands(parts).take_docs(docs), docs, anchor)
    local = sorted(zip(local_i.tolist(), local_j.tolist(), strict=True))
    assert len(local) > 1000
    assert sorted(zip(ray_i.tolist(), ray_j.tolist(), strict=True)) == local


def _blocks_in_ray(tmp_path: Path, frames: list[pl.DataFrame]) -> Parts:
    from assay.curate.ray_engine import _RefEntry

    entries = [_RefEntry(f.height, f.schema, ref=ray.put(f.to_arrow())) for f in frames]
    return Parts(Spill(tmp_path, 0, unbounded=True), entries)


def test_candidates_are_measured_in_tasks_as_locally(cluster, tmp_path: Path) -> None:
    from assay.curate.minhash import MinHashConfig
    from assay.curate.minhash_texts import LocalGraph
    from assay.curate.ray_graph import RayGraph

    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in range(40)]
    texts = [" ".join(rng.choice(words, int(rng.integers(0, 30)))) for _ in range(300)]
    # Two content columns (the text is their join), blocks of 37 rows.
    frame = pl.DataFrame({"prompt": texts, "response": texts[::-1]})
    parts = _blocks_in_ray(tmp_path, [frame.slice(s, 37) for s in range(0, 300, 37)])
    i = rng.integers(0, 299, 500)
    j = i + rng.integers(1, 300 - i)
    cfg = MinHashConfig(ngram=2)
    rows = np.concatenate([i, j])
    local = LocalGraph(parts.texts_of).pair_texts(rows, cfg).jaccard(i, j)
    # 7 groups of pairs, each sent texts from every block holding one of its rows.
    remote = RayGraph(parts, pairs_per_task=80).pair_texts(rows, cfg).jaccard(i, j)
    assert 0 < (local > 0.5).sum() < len(local)
    assert remote.tolist() == local.tolist()


def test_clusters_are_joined_by_star_rounds_over_partitions(cluster, tmp_path: Path) -> None:
    from assay.curate.minhash_lsh import components
    from assay.curate.ray_graph import RayGraph

    rng = np.random.default_rng(2)
    n = 3_000
    i = rng.integers(0, n, 2_000)
    j = rng.integers(0, n, 2_000)
    keep = i != j
    i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    graph = RayGraph(_blocks_in_ray(tmp_path, []), edges_per_part=500)  # 8 partitions
    label = graph.components(n, i, j)
    assert label.tolist() == components(n, i, j).tolist()
    assert 1 < len(np.unique(label[i])) < len(i)  # several clusters, some of many rows


@pytest.mark.parametrize("case", ["empty_file", "strict", "no_content_columns"])
def test_bad_input_fails_as_it_does_locally(cluster, tmp_path: Path, case: str) -> None:
    from assay.curate.pipeline import curate

    files = _corpus(tmp_path)
    options: dict = {}
    if case == "empty_file":
        (tmp_path / "raw" / "empty.jsonl").write_text("")
        files.append(tmp_path / "raw" / "empty.jsonl")
    elif case == "strict":
        options = {"strict": True}
    else:
        (tmp_path / "raw" / "odd.jsonl").write_text('{"colour": "red"}\n')
        files.append(tmp_path / "raw" / "odd.jsonl")
    errors = {}
    for engine in ("local", "ray"):
        ws, _ = Workspace.init(tmp_path / engine)
        with pytest.raises(AssayError) as caught:
            curate(ws, files, CurateConfig.model_validate({**options, "engine": engine}))
        errors[engine] = (type(caught.value), caught.value.message, caught.value.hint)
        assert ws.datasets.list() == [] and not staging_leftovers(ws.layout)
    assert errors["ray"] == errors["local"]


def test_files_at_urls_are_fetched_by_the_read_tasks_not_the_driver(cluster, tmp_path: Path, monkeypatch) -> None:
    from fsspec.implementations.http import HTTPFileSystem

    from assay.curate.pipeline import curate
    from tests.curate.test_remote_inputs import http_server

    files = _corpus(tmp_path)
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 7}, "engine": "ray"})
    _, local = _run(tmp_path, "local", files, cfg.model_copy(update={"engine": "local"}))

    async def refuse(self, *args, **kwargs):
        raise AssertionError("the driver fetched a file")

    monkeypatch.setattr(HTTPFileSystem, "_get_file", refuse)  # in this process only: the driver just lists
    ws, _ = Workspace.init(tmp_path / "ray")
    with http_server(tmp_path) as base:
        urls = [f"{base}/raw/{f.name}" for f in files]
        result = curate(ws, urls, cfg)
        again = curate(ws, urls, cfg)
    assert result.version_id == local.version_id
    assert sorted(i["path"] for i in ws.datasets.get(result.version_id).manifest["inputs"]) == sorted(urls)
    assert again.reused and again.version_id == result.version_id
    assert not staging_leftovers(ws.layout) and not any(ws.layout.tmp.iterdir())


class _Killer(threading.Thread):
    """SIGKILLs the first Ray worker process seen running a block task (a real worker death)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set() and self.killed is None:
            for proc in psutil.Process(me).children(recursive=True):  # the local cluster's workers
                try:
                    if proc.cmdline()[:1] == ["ray::_block_task"]:
                        proc.send_signal(signal.SIGKILL)
                        self.killed = proc.pid
                        return
                except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
                    continue
            time.sleep(0.002)


def _killed_run(tmp_path: Path, name: str, cfg: CurateConfig):
    killer = _Killer()
    killer.start()
    try:
        return _run(tmp_path, name, _corpus(tmp_path), cfg), killer
    finally:
        killer.stop.set()
        killer.join()


def test_a_killed_worker_is_retried_and_the_version_is_unchanged(cluster, tmp_path: Path) -> None:
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 7}})
    _, local = _run(tmp_path, "local", _corpus(tmp_path), cfg)
    (ws, remote), killer = _killed_run(tmp_path, "ray", cfg.model_copy(update={"engine": "ray"}))
    assert killer.killed is not None, "no block task was seen running"
    assert remote.version_id == local.version_id
    assert not staging_leftovers(ws.layout)


def test_a_killed_worker_without_retries_fails_cleanly(cluster, tmp_path: Path) -> None:
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 4}, "engine": "ray", "ray": {"retries": 0}})
    ws, _ = Workspace.init(tmp_path / "ray")
    killer = _Killer()
    killer.start()
    try:
        from assay.curate.pipeline import curate

        with pytest.raises(AssayError, match="lost on the Ray cluster"):
            curate(ws, _corpus(tmp_path), cfg)
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None
    assert ws.datasets.list() == [] and not staging_leftovers(ws.layout)


def test_engine_ray_without_ray_exits_2_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    Workspace.init(tmp_path / "ws")
    files = _corpus(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "curate", "run", *map(str, files), "--engine", "ray"])
    assert result.exit_code == 2, result.output
    assert "assay[ray]" in result.output


def test_an_unreachable_cluster_exits_2_with_the_address(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Workspace.init(tmp_path / "ws")
    files = _corpus(tmp_path)
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    cmd = [sys.executable, "-m", "assay", "--workspace", str(tmp_path / "ws"), "curate", "run", *map(str, files), "--engine", "ray"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "ray start --head" in done.stderr
    assert Workspace.open(tmp_path / "ws").datasets.list() == []


@contextmanager
def _ray_nodes(*extra_nodes: int) -> Iterator[str]:
    """A Ray head node started as users start one (`ray start --head`, token authentication on, Ray's
    default), then a node per entry of `extra_nodes` (its CPUs) joined to it with `ray start --address`,
    all on this machine, each in its own process group, stopped with it. Yields the head's address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it
    ray_cli = str(Path(sys.executable).parent / "ray")
    common = ["--block", "--disable-usage-stats"]
    procs = [subprocess.Popen([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", f"--temp-dir={temp}",
                               "--include-dashboard=false", *common],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for_port(port, procs[0])
        for cpus in extra_nodes:
            node = subprocess.Popen([ray_cli, "start", f"--address=127.0.0.1:{port}", f"--num-cpus={cpus}", *common],
                                    start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env={**os.environ, "RAY_AUTH_MODE": "token"})
            procs.append(node)
            assert node.stdout is not None
            if not any("Ray runtime started" in line for line in node.stdout):
                raise RuntimeError("a Ray worker node did not start")
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for p in psutil.process_iter():  # anything of that session left behind
            try:
                if any(temp in part for part in p.cmdline()):
                    p.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the Ray head node did not start") from None
            time.sleep(0.5)


@pytest.fixture
def head_node() -> Iterator[str]:
    with _ray_nodes() as address:
        yield address


def _join_and_run(address: str, tmp_path: Path, files: list[Path] | list[str], ws: str = "ray") -> str:
    """`assay curate run --engine ray` in a fresh process joined to the cluster at `address`: its version."""
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
    cmd = [sys.executable, "-m", "assay", "--workspace", str(tmp_path / ws), "curate", "run", *map(str, files),
           "--engine", "ray", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["version"]


def test_a_run_joins_an_existing_cluster_by_address(head_node: str, tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    _, local = _run(tmp_path, "local", files, CurateConfig())
    Workspace.init(tmp_path / "ray")
    assert _join_and_run(head_node, tmp_path, files) == local.version_id


def test_a_cluster_of_two_nodes_writes_the_local_version(tmp_path: Path) -> None:
    """The README's multi-node recipe (a head, then `ray start --address` on another node), both nodes on
    this machine: blocks move between the nodes' object stores, local files are read on the driver's
    node, files at URLs by read tasks on any node."""
    from tests.curate.test_remote_inputs import http_server

    files = _corpus(tmp_path)
    cfg = {"read": {"chunk_rows": 7}}
    _, local = _run(tmp_path, "local", files, CurateConfig.model_validate(cfg))
    for ws in ("ray", "ray-urls"):
        Workspace.init(tmp_path / ws)
        (tmp_path / ws / "assay.toml").write_text("[curate.read]\nchunk_rows = 7\n")
    with _ray_nodes(1) as address, http_server(tmp_path) as base:
        assert _join_and_run(address, tmp_path, files) == local.version_id
        urls = [f"{base}/raw/{f.name}" for f in files]
        assert _join_and_run(address, tmp_path, urls, "ray-urls") == local.version_id


def test_without_an_address_a_run_starts_its_own_cluster(tmp_path: Path) -> None:
    """The default user path, in a fresh process: no RAY_ADDRESS, a local cluster for the run, then gone."""
    files = _corpus(tmp_path)
    _, local = _run(tmp_path, "local", files, CurateConfig())
    ws, _ = Workspace.init(tmp_path / "ray")
    (tmp_path / "ray" / "assay.toml").write_text("[curate.ray]\nnum_cpus = 1\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    cmd = [sys.executable, "-m", "assay", "--workspace", str(tmp_path / "ray"), "curate", "run", *map(str, files),
           "--engine", "ray", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["version"] == local.version_id
    assert not staging_leftovers(ws.layout)
