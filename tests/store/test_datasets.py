import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.store.datasets import version_id
from assay.store.digest import frame_digest
from assay.store.versions import verify_dir


def _frame(n=3):
    return pl.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"row {i}" for i in range(n)]})


def test_write_is_content_addressed_and_idempotent(ws):
    first = ws.datasets.write(_frame(), kind="curated", config={"a": 1})
    again = ws.datasets.write(_frame(), kind="curated", config={"a": 1})
    assert first.created and not again.created
    assert first.version.id == again.version.id and first.version.id.startswith("ds-")
    assert len(ws.datasets.list()) == 1
    other = ws.datasets.write(_frame(), kind="curated", config={"a": 2})
    assert other.version.id != first.version.id


def test_manifest_and_files(ws):
    rejects = _frame(1).with_columns(step=pl.lit("exact_dedup"), reason=pl.lit("exact_duplicate"))
    v = ws.datasets.write(_frame(), kind="curated", config={"x": True}, rejects=rejects, parents=["ds-parent"], seed=7).version
    m = v.manifest
    assert m["id"] == v.id and m["kind"] == "curated" and m["parents"] == ["ds-parent"] and m["seed"] == 7
    assert m["rows"] == 3 and m["schema"] == {"id": "String", "text": "String"}
    assert set(m["files"]) == {"data.parquet", "rejects.parquet", "quarantine.parquet"}
    assert "polars" in m["library_versions"] and len(m["config_hash"]) == 64
    assert v.data().collect().equals(_frame())
    assert v.rejects().collect()["reason"].to_list() == ["exact_duplicate"]
    assert verify_dir(v.path) == []
    # the manifest on disk is what the catalog recorded
    assert json.loads((v.path / "manifest.json").read_text())["id"] == v.id


def test_rejects_need_step_and_reason(ws):
    with pytest.raises(ValueError, match="step"):
        ws.datasets.write(_frame(), kind="curated", config={}, rejects=_frame(1))


def test_unknown_kind_is_a_config_error(ws):
    from assay.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown dataset kind"):
        ws.datasets.write(_frame(), kind="weird", config={})


def test_tampered_payload_is_detected(ws):
    v = ws.datasets.write(_frame(), kind="curated", config={}).version
    (v.path / "data.parquet").write_bytes(b"garbage")
    assert any("data.parquet" in p for p in verify_dir(v.path))


def test_digest_ignores_storage_but_not_values():
    df = pl.DataFrame({"a": [1, 2, None], "s": ["x", None, "yy"],
                       "m": [[{"role": "user", "content": "hi"}], None, []]})
    chunked = pl.concat([df.slice(0, 1), df.slice(1, 2)], rechunk=False)
    assert frame_digest(df) == frame_digest(chunked) == frame_digest(df.select(["s", "m", "a"]))
    assert frame_digest(df) != frame_digest(df.with_columns(s=pl.Series(["x", None, "yz"])))
    assert frame_digest(df) != frame_digest(df.reverse())
    assert frame_digest(df) != frame_digest(df.with_columns(s=pl.Series(["x", "", "yy"])))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=20), st.sampled_from(["curated", "approved"]), st.integers(0, 5))
def test_version_id_is_deterministic(texts, kind, cfg):
    df = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "text": texts}, schema={"id": pl.String, "text": pl.String})
    digests = {"data": frame_digest(df)}
    assert version_id(kind, ["p"], str(cfg), digests) == version_id(kind, ["p"], str(cfg), {"data": frame_digest(df.clone())})
    assert version_id(kind, ["p"], str(cfg), digests) != version_id(kind, ["p"], str(cfg + 1), digests)


def test_parquet_writer_streams_blocks_into_row_groups_and_keeps_values(tmp_path, monkeypatch):
    """Blocks are written as row groups of about _ROW_GROUP_BYTES (compressed in parallel); the file
    reads back as the same rows and types, whatever the block and row-group boundaries."""
    import pyarrow.parquet as pq

    from assay.store import datasets
    from assay.store.blocks import Blocks

    class Two(Blocks):
        def __init__(self, df: pl.DataFrame) -> None:
            self.parts, self.frames_read = [df.head(7), df.tail(df.height - 7)], 0

        @property
        def schema(self) -> pl.Schema:
            return self.parts[0].schema

        @property
        def height(self) -> int:
            return sum(p.height for p in self.parts)

        def frames(self, columns=None):
            for part in self.parts:
                self.frames_read += 1
                yield part

    df = pl.DataFrame({"id": [f"r{i}" for i in range(40)], "text": ["word " * i for i in range(40)],
                       "tags": [[str(i)] if i % 3 else None for i in range(40)], "score": [i / 7 for i in range(40)]})
    monkeypatch.setattr(datasets, "_ROW_GROUP_BYTES", 200)
    blocks = Two(df)
    datasets._write_parquet(blocks, tmp_path / "x.parquet")
    assert pl.read_parquet(tmp_path / "x.parquet").equals(df) and blocks.frames_read == 2
    assert pq.ParquetFile(tmp_path / "x.parquet").metadata.num_row_groups > 2
    datasets._write_parquet(datasets.FrameBlocks(df.clear()), tmp_path / "empty.parquet")
    assert pl.read_parquet(tmp_path / "empty.parquet").schema == df.schema


def test_parquet_row_groups_are_sized_from_rows_not_from_an_empty_first_block(tmp_path, monkeypatch):
    """A version's rejects often start with a block holding none (a step that removed nothing there):
    the row-group size must come from rows that exist, or the whole part becomes one row group that
    Polars holds in memory (a 1 GB group at 10M rows)."""
    import pyarrow.parquet as pq

    from assay.curate.spill import Spill
    from assay.store import datasets

    df = pl.DataFrame({"id": [f"r{i}" for i in range(3000)], "text": ["a few words of text " * 5] * 3000})
    parts = Spill(tmp_path / "spill", 2**30).parts()
    for block in (df.clear(), df.head(1), df.slice(1, 1499), df.slice(1500)):
        parts.append(block)
    monkeypatch.setattr(datasets, "_ROW_GROUP_BYTES", 100 * 2**10)
    datasets._write_parquet(parts, tmp_path / "x.parquet")
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata
    assert pl.read_parquet(tmp_path / "x.parquet").equals(df)
    sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    assert meta.num_row_groups >= 3 and max(sizes) < 1500, sizes  # ~100 KiB of ~120-byte rows each


def test_polars_write_errors_on_a_full_disk_are_named_as_such(tmp_path):
    """Polars reports I/O failures as ComputeError; the writer turns them back into the OSError (with
    its errno) that the store maps to 'the disk is full'. /dev/full fails every write with ENOSPC."""
    import errno
    from pathlib import Path

    from assay.store import datasets

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    from assay.errors import storage_error

    frame = pl.DataFrame({"text": ["x" * 1000] * 1000})
    with pytest.raises(OSError) as raised:
        datasets._write_parquet(datasets.FrameBlocks(frame), Path("/dev/full"))
    assert raised.value.errno == errno.ENOSPC
    # Polars' other writers raise an OSError without errno; the code in its message still counts.
    with pytest.raises(OSError) as ipc:
        frame.write_ipc("/dev/full")
    full = storage_error(ipc.value)
    assert full is not None and "the disk is full" in str(full) and "No space left" in str(full)
