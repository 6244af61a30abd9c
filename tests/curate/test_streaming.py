"""The engine runs steps over blocks and spills between passes: results must not depend on either.

A run with many tiny blocks, every block spilled to disk, must give the version (id, rows, rejects,
quarantine) of a run holding everything in one block; spill files never outlive a run, a full disk
is a clear error, and a killed run leaves no version.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.errors import StorageError
from assay.workspace import Workspace, staging_leftovers
from tests.conftest import write_jsonl

WORDS = ["river", "stone", "lamp", "garden", "winter", "bread", "violin", "cotton", "orbit", "meadow", "ladder", "copper", "signal", "harbor", "pencil"]


def _corpus(tmp_path: Path) -> list[Path]:
    """Two files of different shapes with exact and near copies, PII, repeats, input splits and bad lines."""
    rng = random.Random(7)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)) + " and then the day was over."

    texts = [{"text": f"{sentence(30)}\n\n{sentence(20)}"} for _ in range(60)]
    texts += [dict(texts[i]) for i in range(0, 60, 9)]  # exact copies (repeats: occurrence > 0)
    texts += [{"text": t["text"].replace("the day", "a day", 1)} for t in texts[:8]]  # near copies
    texts += [{"text": f"Write to ann.lee@example.org about {sentence(12)}"}, {"text": "spam " * 12}]
    rng.shuffle(texts)
    chats = [{"messages": [{"role": "user", "content": f"Q{i}: {sentence(8)}"},
                           {"role": "assistant", "content": sentence(25)}], "split": rng.choice(["train", "test", None])}
             for i in range(40)]
    chats += [dict(chats[i]) for i in range(0, 40, 7)]
    return [
        write_jsonl(tmp_path / "raw" / "texts.jsonl", texts, extra_lines={3: "{broken", 50: "[1, 2]"}),
        write_jsonl(tmp_path / "raw" / "chats.jsonl", chats, extra_lines={10: '{"messages": 5}'}),
    ]


def _run(tmp_path: Path, name: str, files: list[Path], cfg: CurateConfig):
    ws, _ = Workspace.init(tmp_path / name)
    return ws, curate(ws, files, cfg)


CONFIGS = {
    "default": {},
    "longest_stratified": {"near_dedup": {"keep": "longest"}, "split": {"stratify_by": "source"}},
    "flag_resplit": {"near_dedup": {"action": "flag"}, "split": {"input_splits": "resplit"}, "exact_dedup": {"casefold": True}},
    # A first pass that only collects keys leaves blocks where they are, but for those whose ids change (repeats).
    "keys_first": {"steps": ["exact_dedup", "near_dedup", "split"]},
}


@pytest.mark.parametrize("options", CONFIGS.values(), ids=list(CONFIGS))
def test_tiny_spilled_blocks_give_the_version_of_one_block(tmp_path: Path, options: dict) -> None:
    files = _corpus(tmp_path)
    one = CurateConfig.model_validate({**options, "read": {"chunk_rows": 100_000}})
    tiny = CurateConfig.model_validate({**options, "read": {"chunk_rows": 7}, "memory_mb": 0})
    ws_a, a = _run(tmp_path, "one", files, one)
    ws_b, b = _run(tmp_path, "tiny", files, tiny)
    _, held = _run(tmp_path, "held", files, tiny.model_copy(update={"memory_mb": 4096}))
    assert a.counts["read"] > 100 and a.counts["rejected"] > 10 and a.counts["quarantined"] == 3
    # chunk_rows is part of the recorded config (so of the id); memory_mb is not, and neither changes a row
    assert b.version_id == held.version_id
    assert b.write.version.manifest["digests"] == a.write.version.manifest["digests"]
    for part in ("data", "rejects", "quarantine"):
        assert getattr(b.write.version, part)().collect().equals(getattr(a.write.version, part)().collect())
    assert [s["removed"] for s in b.counts["steps"]] == [s["removed"] for s in a.counts["steps"]]
    assert staging_leftovers(ws_b.layout) == [] and not list(ws_b.layout.tmp.glob("*"))


def test_blocks_spill_to_disk_beyond_the_memory_budget(tmp_path: Path, monkeypatch) -> None:
    written: list[Path] = []
    real = pl.DataFrame.write_ipc

    def write_ipc(self, target, **kw):
        if isinstance(target, str | Path):  # a spill file, not a block held in memory as bytes
            written.append(Path(target))
        return real(self, target, **kw)

    monkeypatch.setattr(pl.DataFrame, "write_ipc", write_ipc)
    _run(tmp_path, "ws", _corpus(tmp_path), CurateConfig.model_validate({"read": {"chunk_rows": 10}, "memory_mb": 0}))
    assert len(written) > 20 and all(p.name.startswith("part-") for p in written)
    assert not any(p.exists() for p in written)  # removed with the run


def test_a_full_disk_while_spilling_is_a_clear_error_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    real, calls = pl.DataFrame.write_ipc, []

    def write_ipc(self, path, **kw):
        calls.append(path)
        if len(calls) > 3:  # the disk fills on the fourth spill, half-way through a file
            Path(path).write_bytes(b"partial")
            return real(self, "/dev/full", **kw)  # Polars' own error for a full disk (an OSError without errno)
        return real(self, path, **kw)

    monkeypatch.setattr(pl.DataFrame, "write_ipc", write_ipc)
    ws, _ = Workspace.init(tmp_path / "ws")
    with pytest.raises(StorageError, match="disk filled while spilling") as err:
        curate(ws, _corpus(tmp_path), CurateConfig.model_validate({"read": {"chunk_rows": 10}, "memory_mb": 0}))
    assert "no version was written" in str(err.value) and err.value.hint
    assert ws.datasets.list() == [] and not list(ws.layout.tmp.glob("*"))


def test_a_full_disk_while_writing_candidate_texts_is_the_same_clear_error(tmp_path: Path, monkeypatch) -> None:
    from assay.curate import minhash_texts

    def full(path: Path, pieces) -> None:
        path.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(minhash_texts, "IN_MEMORY_TEXT_BYTES", 0)  # near-dedup's candidate texts go to a file
    monkeypatch.setattr(minhash_texts, "_write_texts", full)
    ws, _ = Workspace.init(tmp_path / "ws")
    with pytest.raises(StorageError, match="disk filled while spilling") as err:
        curate(ws, _corpus(tmp_path), CurateConfig.model_validate({"read": {"chunk_rows": 10}, "memory_mb": 0}))
    assert "no version was written" in str(err.value) and err.value.hint
    assert ws.datasets.list() == [] and not list(ws.layout.tmp.glob("*"))


KILL_AFTER_SPILLS = """
import os, signal, sys
import numpy as np
import polars as pl
from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.workspace import Workspace

real, seen = pl.DataFrame.write_ipc, []
def write_then_die(self, path, **kw):
    seen.append(path)
    if len(seen) == 12:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, path, **kw)
pl.DataFrame.write_ipc = write_then_die
ws = Workspace.open(sys.argv[1])
curate(ws, sys.argv[2:], CurateConfig.model_validate({"read": {"chunk_rows": 10}, "memory_mb": 0}))
"""


def test_a_run_killed_while_spilling_leaves_no_version_and_doctor_removes_its_files(tmp_path: Path) -> None:
    files = _corpus(tmp_path)
    ws, _ = Workspace.init(tmp_path / "ws")
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_SPILLS, str(ws.root), *map(str, files)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert proc.returncode == -9, proc.stderr
    ws = Workspace.open(ws.root)
    assert ws.datasets.list() == []
    leftovers = staging_leftovers(ws.layout)
    assert len(leftovers) == 1 and list(leftovers[0].glob("part-*.arrow"))
    done = subprocess.run([sys.executable, "-m", "assay", "doctor", "--workspace", str(ws.root), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert staging_leftovers(ws.layout) == [] and not leftovers[0].exists()


def test_blocks_held_in_memory_keep_every_value_and_dtype(tmp_path: Path) -> None:
    """In-memory blocks are held as Arrow tables, or IPC streams (Polars' own IPC for dtypes Arrow lacks):
    nothing may change, and the memory counted is what the block pins."""
    import datetime as dt

    from assay.curate.spill import Spill

    frame = pl.DataFrame({
        "s": ["a", None, "long text " * 5], "i": [1, 2, None], "f": [0.5, None, 2.0], "b": [True, False, None],
        "l": [["x"], [], None], "st": [{"a": 1, "b": "x"}, None, {"a": 3, "b": None}],
        "cat": pl.Series(["u", "v", "u"], dtype=pl.Categorical), "en": pl.Series(["p", "q", "p"], dtype=pl.Enum(["p", "q"])),
        "ts": [dt.datetime(2020, 1, 1, tzinfo=dt.UTC)] * 3, "u8": pl.Series([1, 2, 3], dtype=pl.UInt8),
        "dec": pl.Series(["1.5", "2.25", "3"]).cast(pl.Decimal(10, 2)), "day": [dt.date(2020, 1, 1)] * 3,
        "bin": [b"x", None, b""], "none": [None] * 3, "arr": pl.Series([[1, 2], [3, 4], [5, 6]], dtype=pl.Array(pl.Int64, 2)),
    })
    spill = Spill(tmp_path / "spill", 2**30)
    for df in (frame, frame.head(0), frame.with_columns(big=pl.Series([1, 2, 3], dtype=pl.Int128))):
        entry = spill.keep(df)
        assert entry.path is None and entry.size > 0 and spill.held >= entry.size
        back = entry.read()
        assert back.schema == df.schema and back.equals(df)
        assert entry.read(["cat", "s"]).equals(df.select("cat", "s"))
    # A few rows sliced from a large frame: held by their own bytes, not the large frame's buffers.
    rows = pl.DataFrame({"n": np.arange(1_000_000), "s": ["x" * 20] * 1_000_000}).slice(999_000, 10)
    before = spill.held
    entry = spill.keep(rows)
    assert entry.read().equals(rows) and entry.size < 10_000 and spill.held - before == entry.size
    assert not (tmp_path / "spill").exists()  # nothing went to disk


@pytest.mark.parametrize("memory_mb", [0, 4096], ids=["spilled", "held"])
def test_a_first_pass_that_only_reads_keys_gives_repeated_rows_their_own_ids(tmp_path: Path, memory_mb: int) -> None:
    # exact_dedup first: the pass collects keys only, and blocks holding repeats get their ids fixed
    cfg = CurateConfig.model_validate({"steps": ["exact_dedup"], "read": {"chunk_rows": 7}, "memory_mb": memory_mb})
    _, run = _run(tmp_path, "keys", _corpus(tmp_path), cfg)
    version = run.write.version
    ids = pl.concat([version.data().select("id").collect(), version.rejects().select("id").collect()])["id"]
    assert run.counts["rejected"] > 5  # the repeats, removed as exact duplicates
    assert ids.len() == run.counts["read"] and ids.n_unique() == ids.len()
