"""Exporting a version: to a path or to an object-store URL (fsspec's in-memory store), a slice at a
time, and nothing published when a write fails."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import fsspec
import polars as pl
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import StorageError
from assay.store import export
from assay.store.export import export_version


def _version(ws, n: int = 2_000):
    frame = pl.DataFrame({
        "id": [f"r{i}" for i in range(n)],
        "text": [f"row {i}\nwith a second line and \"quotes\" é" for i in range(n)],
        "score": [i / 7 for i in range(n)],
    })
    return ws.datasets.write(frame, kind="curated", config={}).version


@pytest.fixture
def bucket(tmp_path: Path):
    fs, root = fsspec.filesystem("memory"), f"/exports-{tmp_path.name}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_an_export_has_the_versions_rows_on_disk_and_at_a_url(ws, tmp_path: Path, bucket, fmt: str, monkeypatch) -> None:
    v = _version(ws)
    want = v.data().collect()
    monkeypatch.setattr(export, "_BATCH_ROWS", 300)  # JSONL in 7 slices, the last one short
    fs, root = bucket
    assert export_version(v, tmp_path / f"out.{fmt}", fmt=fmt) == want.height
    assert export_version(v, f"memory://{root}/deep/out.{fmt}", fmt=fmt, staging=ws.layout.tmp) == want.height
    remote = fs.cat_file(f"{root}/deep/out.{fmt}")
    assert remote == (tmp_path / f"out.{fmt}").read_bytes()
    back = pl.read_ndjson(io.BytesIO(remote), schema=want.schema) if fmt == "jsonl" else pl.read_parquet(io.BytesIO(remote))
    assert back.equals(want)
    if fmt == "jsonl":  # the slices' lines are those of the whole part written at once
        assert remote == want.write_ndjson().encode()
    assert not any(ws.layout.tmp.iterdir())


def test_the_cli_exports_to_a_url(ws, bucket) -> None:
    v = _version(ws, 10)
    fs, root = bucket
    url = f"memory://{root}/rejects.jsonl"
    result = CliRunner().invoke(app, ["data", "export", v.id, "--part", "rejects", "--out", url, "-w", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["out"] == url and fs.cat_file(f"{root}/rejects.jsonl") == b""


def test_a_full_disk_and_a_failed_upload_are_clear_errors(ws, tmp_path: Path, bucket, monkeypatch) -> None:
    v = _version(ws)

    def full(self, file, **kw):
        file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", file.name)

    monkeypatch.setattr(pl.DataFrame, "write_ndjson", full)
    with pytest.raises(StorageError, match="the disk is full"):
        export_version(v, tmp_path / "out.jsonl")
    assert not list(tmp_path.glob("*out.jsonl"))  # neither the file nor its temporary sibling
    monkeypatch.undo()

    def refused(self, lpath, rpath, **kw):
        raise PermissionError(errno.EACCES, "Access denied")

    monkeypatch.setattr(type(fsspec.filesystem("memory")), "put_file", refused)
    fs, root = bucket
    with pytest.raises(StorageError, match=f"cannot write memory://{root}/out.jsonl: permission denied"):
        export_version(v, f"memory://{root}/out.jsonl", staging=ws.layout.tmp)
    assert not fs.exists(f"{root}/out.jsonl") and not any(ws.layout.tmp.iterdir())


def test_a_whole_version_exports_byte_for_byte_with_its_manifest_last(ws, tmp_path: Path, bucket, monkeypatch) -> None:
    from assay.store.versions import verify_dir

    v = _version(ws)
    fs, root = bucket
    order: list[str] = []
    real = type(fs).put_file

    def put_file(self, lpath, rpath, **kw):
        order.append(rpath.rsplit("/", 1)[-1])
        return real(self, lpath, rpath, **kw)

    monkeypatch.setattr(type(fs), "put_file", put_file)
    result = CliRunner().invoke(app, ["data", "export", v.id, "--part", "all", "--out", f"memory://{root}/{v.id}/",
                                      "-w", str(ws.root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == {"data": 2_000, "rejects": 0, "quarantine": 0}
    assert order[-1] == "manifest.json" and sorted(order[:-1]) == ["data.parquet", "quarantine.parquet", "rejects.parquet"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in order:
        (copy / name).write_bytes(fs.cat_file(f"{root}/{v.id}/{name}"))
    assert verify_dir(copy) == []  # every file matches the manifest's hash
    local = export.export_all(v, tmp_path / "local")
    assert local["data"] == 2_000 and verify_dir(tmp_path / "local") == []


def test_a_whole_version_cannot_be_asked_for_as_jsonl(ws, tmp_path: Path) -> None:
    v = _version(ws, 3)
    result = CliRunner().invoke(app, ["data", "export", v.id, "--part", "all", "--format", "jsonl",
                                      "--out", str(tmp_path / "v"), "-w", str(ws.root)])
    assert result.exit_code == 2 and "--part all exports the version's Parquet files" in result.output
    assert not (tmp_path / "v").exists()
