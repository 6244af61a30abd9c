"""A writer killed mid-version leaves nothing half-written visible, and `assay doctor` cleans up."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from assay.workspace import Workspace, doctor

WRITER = textwrap.dedent(
    """
    import os, sys
    import polars as pl
    from assay.store import versions
    from assay.workspace import Workspace

    crash_at = sys.argv[2]
    real_publish = versions.publish_dir

    def publish(staged, final):
        if crash_at == "before-rename":
            os._exit(9)
        real_publish(staged, final)
        if crash_at == "after-rename":
            os._exit(9)

    versions.publish_dir = publish
    if crash_at == "mid-write":
        real_write = pl.LazyFrame.sink_parquet
        def write(self, path, *a, **k):
            if str(path).endswith("rejects.parquet"):
                os._exit(9)
            return real_write(self, path, *a, **k)
        pl.LazyFrame.sink_parquet = write
    n = int(sys.argv[3])
    ws = Workspace.open(sys.argv[1])
    df = pl.DataFrame({"id": [str(i) for i in range(n)], "text": ["x" * 200 + str(i) for i in range(n)]})
    print("writing", flush=True)
    ws.datasets.write(df, kind="curated", config={})
    print("done", flush=True)
    """
)


def _writer(ws, crash_at: str, rows: int = 100) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(ws.root), crash_at, str(rows)],
                            stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("crash_at", ["mid-write", "before-rename"])
def test_crash_before_publish_leaves_nothing_visible(ws, crash_at):
    proc = _writer(ws, crash_at)
    assert proc.wait(60) == 9
    assert ws.datasets.list() == []
    assert not any((ws.root / "datasets").iterdir())
    leftovers = list((ws.root / "tmp").iterdir())
    assert leftovers, "the staging folder is what the crash leaves"
    report = doctor(ws)
    assert report.ok and len(report.removed) == len(leftovers)
    assert not any((ws.root / "tmp").iterdir())


def test_crash_after_rename_is_invisible_then_recovered(ws):
    assert _writer(ws, "after-rename").wait(60) == 9
    assert ws.datasets.list() == [], "not catalogued means not visible"
    report = doctor(ws)
    assert report.ok and len(report.recovered) == 1
    [entry] = ws.datasets.list()
    assert ws.datasets.get(entry.id).data().collect().height == 100


def test_sigkill_at_random_points_never_shows_half_a_version(ws):
    for delay in (0.05, 0.3, 0.8, 1.5):
        proc = _writer(ws, "none", rows=400_000)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        for entry in Workspace.open(ws.root).datasets.list():
            assert ws.datasets.get(entry.id).data().collect().height == 400_000
        doctor(ws)
        assert not any(p.name.startswith(".staging") for p in (ws.root / "tmp").iterdir())
    assert doctor(ws).ok


def test_doctor_reports_damage_and_keeps_live_writers(ws):
    import polars as pl

    v = ws.datasets.write(pl.DataFrame({"id": ["a"], "text": ["t"]}), kind="curated", config={}).version
    (v.path / "data.parquet").write_bytes(b"corrupt")
    live = ws.root / "tmp" / f".staging-{os.getppid()}-abc"
    live.mkdir()
    report = doctor(ws)
    assert not report.ok and any("data.parquet" in p for p in report.problems)
    assert live.exists(), "a staging folder of a live process is not a leftover"


@pytest.mark.parametrize("damaged", [False, True])
def test_rewriting_over_an_uncatalogued_leftover_registers_a_whole_version(ws, damaged):
    assert _writer(ws, "after-rename").wait(60) == 9
    [leftover] = list((ws.root / "datasets").iterdir())
    if damaged:
        (leftover / "data.parquet").write_bytes(b"torn")
    assert _writer(ws, "none").wait(60) == 0
    [entry] = ws.datasets.list()
    v = ws.datasets.get(entry.id)
    assert v.data().collect().height == 100 and doctor(ws).ok


def test_a_full_disk_publishes_nothing_and_says_so(ws, tmp_path, monkeypatch):
    import errno
    import json

    from typer.testing import CliRunner

    from assay.cli import app
    from assay.store import datasets
    from tests.conftest import sentence, write_jsonl

    real_write = datasets._write_parquet

    def full_disk(blocks, path):
        if str(path).endswith("data.parquet"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(blocks, path)

    monkeypatch.setattr(datasets, "_write_parquet", full_disk)
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": sentence(i)} for i in range(20)])
    got = CliRunner().invoke(app, ["-w", str(ws.root), "--json", "curate", "run", str(data)])
    assert got.exit_code == 2, got.output
    error = json.loads(got.stdout.strip().splitlines()[-1])
    assert "disk is full" in error["error"] and "data.parquet" in error["error"] and "doctor" in error["hint"]
    assert ws.datasets.list() == [] and not any((ws.root / "datasets").iterdir())
    assert doctor(ws).ok
