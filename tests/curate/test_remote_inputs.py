"""Inputs at fsspec URLs (here fsspec's in-memory file system, a real fsspec backend): the same
version as the same files on disk, the URLs in the manifest, no copies left, clear errors."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fsspec
import pytest

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.errors import InputError, MissingDependencyError
from assay.workspace import Workspace, staging_leftovers
from tests.curate.test_streaming import _corpus


@pytest.fixture
def bucket(tmp_path: Path):
    """The streaming tests' corpus on disk and at memory://corpus-<n>/raw/ (same parent folder name)."""
    files = _corpus(tmp_path)
    fs = fsspec.filesystem("memory")
    root = f"/corpus-{tmp_path.name}"
    for f in files:
        fs.pipe(f"{root}/raw/{f.name}", f.read_bytes())
    yield files, f"memory://{root}/raw"
    fs.rm(root, recursive=True)


def test_urls_give_the_version_of_the_same_files_on_disk(tmp_path: Path, bucket) -> None:
    files, url = bucket
    cfg = CurateConfig.model_validate({"read": {"chunk_rows": 16}})
    local = curate(Workspace.init(tmp_path / "local")[0], files, cfg)
    ws, _ = Workspace.init(tmp_path / "remote")
    remote = curate(ws, [f"{url}/{f.name}" for f in files], cfg)
    assert remote.version_id == local.version_id
    paths = [i["path"] for i in ws.datasets.get(remote.version_id).manifest["inputs"]]
    assert sorted(paths) == sorted(f"memory://{url.removeprefix('memory://')}/{f.name}" for f in files)
    assert not staging_leftovers(ws.layout) and not any(ws.layout.tmp.iterdir())
    # a glob of URLs matches (and orders) files as the same glob on disk does
    on_disk = curate(Workspace.init(tmp_path / "disk-glob")[0], [str(files[0].parent / "*.jsonl")], cfg)
    again = curate(Workspace.init(tmp_path / "glob")[0], [f"{url}/*.jsonl"], cfg)
    assert again.version_id == on_disk.version_id


def test_a_missing_url_names_it(tmp_path: Path, bucket) -> None:
    _, url = bucket
    ws, _ = Workspace.init(tmp_path / "ws")
    with pytest.raises(InputError, match="memory://.*/nothing.jsonl does not exist"):
        curate(ws, [f"{url}/nothing.jsonl"])
    with pytest.raises(InputError, match="no files match"):
        curate(ws, [f"{url}/*.csv"])
    assert ws.datasets.list() == [] and not staging_leftovers(ws.layout)


def test_an_unknown_protocol_says_what_to_install(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    with pytest.raises(MissingDependencyError, match="nosuchfs://"):
        curate(ws, ["nosuchfs://bucket/train.jsonl"])


def test_an_http_url_gives_the_local_version_and_records_the_url(tmp_path: Path) -> None:
    """fsspec's HTTP file system against a real HTTP server: its paths carry the protocol themselves."""
    files = _corpus(tmp_path)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/raw/{files[0].name}"
        local = curate(Workspace.init(tmp_path / "local")[0], files[:1])
        ws, _ = Workspace.init(tmp_path / "remote")
        remote = curate(ws, [url])
    finally:
        server.shutdown()
    assert remote.version_id == local.version_id
    assert [i["path"] for i in ws.datasets.get(remote.version_id).manifest["inputs"]] == [url]
