"""Inputs at fsspec URLs (fsspec's in-memory file system and its HTTP one against a real HTTP server):
the same version as the same files on disk, the URLs in the manifest, no copies left, clear errors."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fsspec
import pytest

from assay.curate import engine
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


@contextmanager
def http_server(root: Path) -> Iterator[str]:
    """A real HTTP server for the files under `root`, on a free port: its base URL."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_an_http_url_gives_the_local_version_and_records_the_url(tmp_path: Path) -> None:
    """fsspec's HTTP file system against a real HTTP server: its paths carry the protocol themselves."""
    files = _corpus(tmp_path)
    with http_server(tmp_path) as base:
        url = f"{base}/raw/{files[0].name}"
        local = curate(Workspace.init(tmp_path / "local")[0], files[:1])
        ws, _ = Workspace.init(tmp_path / "remote")
        remote = curate(ws, [url])
    assert remote.version_id == local.version_id
    assert [i["path"] for i in ws.datasets.get(remote.version_id).manifest["inputs"]] == [url]


def test_files_are_fetched_one_at_a_time_as_they_are_read(tmp_path: Path, bucket, monkeypatch) -> None:
    """Each file at a URL is copied just before its reader runs and removed right after; a rerun of the
    same URLs is recognised once they are read (their fingerprints are taken as they are fetched)."""
    files, url = bucket
    held: list[list[Path]] = []
    real = engine.read_chunks

    def read_chunks(f, cfg):
        held.append(sorted(p for p in ws.layout.tmp.rglob("*") if p.is_file() and "fetch-" in str(p)))
        yield from real(f, cfg)

    monkeypatch.setattr(engine, "read_chunks", read_chunks)
    ws, _ = Workspace.init(tmp_path / "ws")
    events: list[tuple[str, dict]] = []
    first = curate(ws, [f"{url}/{f.name}" for f in files], progress=lambda e, info: events.append((e, info)))
    assert [[p.name for p in h] for h in held] == [[f.name] for f in files]  # only the file being read
    fetches = [info["url"] for e, info in events if e == "fetch"]
    assert sorted(fetches) == sorted(f"memory://{url.removeprefix('memory://')}/{f.name}" for f in files)
    again = curate(ws, [f"{url}/{f.name}" for f in files])
    assert again.reused and again.version_id == first.version_id and len(held) == 2 * len(files)
    assert not any(ws.layout.tmp.iterdir())


def test_a_folder_url_is_copied_and_gives_the_version_of_the_folder_on_disk(tmp_path: Path, bucket) -> None:
    files, url = bucket
    local = curate(Workspace.init(tmp_path / "local")[0], [files[0].parent])
    ws, _ = Workspace.init(tmp_path / "remote")
    remote = curate(ws, [url])
    assert remote.version_id == local.version_id
    assert not any(ws.layout.tmp.iterdir())
