"""Inputs and exports at s3:// URLs through s3fs, against an S3-compatible server on this machine
(moto's, over real HTTP): the S3 API's own listing, prefixes as folders, multipart uploads and error
types, which fsspec's memory and HTTP stores do not have. Not AWS itself: its endpoint, credentials
and retries are the user's setting (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.errors import InputError, StorageError
from assay.store.export import export_all, export_version
from assay.store.versions import verify_dir
from assay.workspace import Workspace, staging_leftovers
from tests.curate.test_streaming import _corpus, _run

s3fs = pytest.importorskip("s3fs", reason="the S3 tests need s3fs (in assay[dev])")
moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server", reason="the S3 tests need moto[server]")

BUCKET = "corpus"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """An S3-compatible server on a free port, and the environment a user sets to reach it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            env.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()  # file systems are cached by their arguments, not the environment
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield url
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture
def uploaded(endpoint: str, tmp_path: Path) -> tuple[list[Path], str]:
    """The streaming tests' corpus on disk and under a fresh prefix of the bucket: (files, prefix URL)."""
    files = _corpus(tmp_path)
    prefix = f"{BUCKET}/{tmp_path.name}/raw"
    fs = s3fs.S3FileSystem()
    for f in files:
        fs.put_file(str(f), f"{prefix}/{f.name}")
    return files, f"s3://{prefix}"


def test_a_glob_in_a_bucket_gives_the_version_of_the_files_on_disk(uploaded, tmp_path: Path) -> None:
    files, prefix = uploaded
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 7}})
    _, local = _run(tmp_path, "local", sorted(files), cfg)  # a glob's matches are read in sorted order
    ws, _ = Workspace.init(tmp_path / "s3")
    result = curate(ws, [f"{prefix}/*"], cfg)
    again = curate(ws, [f"{prefix}/*"], cfg)
    assert result.version_id == local.version_id
    assert sorted(i["path"] for i in ws.datasets.get(result.version_id).manifest["inputs"]) == sorted(
        f"{prefix}/{f.name}" for f in files
    )
    assert again.reused and again.version_id == result.version_id
    assert not staging_leftovers(ws.layout) and not any(ws.layout.tmp.iterdir())


def test_a_prefix_is_read_as_a_folder(uploaded, tmp_path: Path) -> None:
    """S3 has no folders, only key prefixes: a prefix URL is the folder of the files under it."""
    files, prefix = uploaded
    local = curate(Workspace.init(tmp_path / "local")[0], [files[0].parent])
    remote = curate(Workspace.init(tmp_path / "s3")[0], [f"{prefix}/"])
    assert remote.version_id == local.version_id


def test_a_version_exported_to_a_bucket_verifies_and_reads_back(uploaded, tmp_path: Path) -> None:
    files, prefix = uploaded
    ws, _ = Workspace.init(tmp_path / "ws")
    version = ws.datasets.get(curate(ws, files).version_id)
    out = f"s3://{BUCKET}/{tmp_path.name}/versions/{version.id}"
    counts = export_all(version, out, staging=ws.layout.tmp)
    rows = export_version(version, f"{out}.jsonl", staging=ws.layout.tmp)

    back = tmp_path / "back"
    s3fs.S3FileSystem().get(out.removeprefix("s3://"), str(back), recursive=True)
    assert sorted(p.name for p in back.iterdir()) == ["data.parquet", "manifest.json", "quarantine.parquet",
                                                       "rejects.parquet"]
    assert verify_dir(back) == []
    ids = version.data().collect().get_column("id").to_list()
    assert counts["data"] == rows == len(ids) > 0
    lines = s3fs.S3FileSystem().cat_file(f"{out}.jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert not any(ws.layout.tmp.iterdir())


def _unreachable_env() -> dict[str, str]:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1"}


def test_an_unreachable_store_is_a_clear_error_not_a_traceback(uploaded, tmp_path: Path) -> None:
    """The store's own exception types (botocore's, not OSError) are named with the URL and the fix."""
    _, prefix = uploaded
    Workspace.init(tmp_path / "ws")
    env = _unreachable_env()
    cmd = [sys.executable, "-m", "assay", "--workspace", str(tmp_path / "ws")]
    read = subprocess.run([*cmd, "curate", "run", f"{prefix}/*"], env=env, capture_output=True, text=True, timeout=120)
    assert read.returncode == 2, read.stderr[-2000:]
    assert f"cannot read {prefix}/*: EndpointConnectionError" in " ".join(read.stderr.split())
    assert "Traceback" not in read.stderr and "reachable" in read.stderr


def test_store_errors_keep_their_kind_for_reads_and_writes(uploaded, tmp_path: Path, monkeypatch) -> None:
    """In-process: a read that cannot reach the store is an InputError, an upload a StorageError."""
    _, prefix = uploaded
    ws, _ = Workspace.init(tmp_path / "ws")
    version = ws.datasets.get(curate(ws, [f"{prefix}/*"]).version_id)
    for key, value in _unreachable_env().items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(InputError, match="cannot read s3://"):
            curate(ws, [f"{prefix}/*"])
        with pytest.raises(StorageError, match="cannot write s3://.*EndpointConnectionError"):
            export_version(version, f"s3://{BUCKET}/out/data.jsonl", staging=ws.layout.tmp)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert not any(ws.layout.tmp.iterdir())


@pytest.mark.slow
def test_the_ray_engines_read_tasks_fetch_from_the_bucket(uploaded, tmp_path: Path, monkeypatch) -> None:
    """A Ray cluster started where the store's settings are in the environment (as a run that starts its
    own cluster, or `ray start`, passes them on to its workers): the read tasks fetch the files, never
    the driver, and the version is the local engine's."""
    ray = pytest.importorskip("ray", reason="the Ray engine's tests need assay[ray]")
    files, prefix = uploaded
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 7}})
    _, local = _run(tmp_path, "local", sorted(files), cfg)

    async def refuse(self, *args, **kwargs):
        raise AssertionError("the driver fetched a file")

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        monkeypatch.setattr(s3fs.S3FileSystem, "_get_file", refuse)  # in this process only: the driver lists
        ws, _ = Workspace.init(tmp_path / "ray")
        result = curate(ws, [f"{prefix}/*"], cfg.model_copy(update={"engine": "ray"}))
    finally:
        ray.shutdown()
    assert result.version_id == local.version_id
    assert not staging_leftovers(ws.layout) and not any(ws.layout.tmp.iterdir())
