import random

import polars as pl
import pytest

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.near_dedup import EXISTING_KEY, NearDedupConfig
from assay.errors import ConfigError
from tests.conftest import write_jsonl
from tests.curate.test_streaming import WORDS

BASE = ("Natalia sold clips to forty eight of her friends in April and then she sold half as many clips in May "
        "so the question is how many clips did Natalia sell altogether in April and May of this year")


def _edit(text: str, word: str) -> str:
    words = text.split()
    words[-3] = word
    return " ".join(words)


def _frame():
    texts = [BASE, _edit(BASE, "last"), "A completely different row about trains leaving a station at noon every day " * 2, _edit(BASE, "next")]
    return pl.DataFrame({"id": ["a", "b", "c", "d"], "text": texts, "q_score": [0.1, 0.9, 0.5, 0.2]})


def _run(df, cfg, extra=None):
    return REGISTRY["near_dedup"].fn(df.lazy(), cfg, StepContext(content_columns=("text",), extra=extra or {})).collect()


def test_drop_keeps_first_and_records_cluster_and_similarity():
    out = _run(_frame(), NearDedupConfig())
    assert out["_reason"].to_list() == [None, "near_duplicate", None, "near_duplicate"]
    assert out["_duplicate_of"].to_list() == [None, "a", None, "a"]
    assert out["dup_cluster"].to_list() == ["a", "a", "c", "a"]
    assert out["_detail"][1].startswith("jaccard 0.") and out["_detail"][1].endswith("with a")


def test_keep_by_score_and_flag_mode():
    out = _run(_frame(), NearDedupConfig(keep="score", score_column="q_score"))
    assert out["_duplicate_of"].to_list() == ["b", None, None, "b"]
    flagged = _run(_frame(), NearDedupConfig(action="flag"))
    assert flagged["_reason"].null_count() == 4 and flagged["dup_cluster"].to_list() == ["a", "a", "c", "a"]
    with pytest.raises(ConfigError, match="score_column"):
        _run(_frame(), NearDedupConfig(keep="score"))


def test_against_existing_rows():
    existing = pl.DataFrame({"id": ["old"], "text": [BASE]})
    out = _run(_frame().slice(1), NearDedupConfig(), {EXISTING_KEY: existing})
    assert out["_reason"].to_list() == ["near_duplicate_of_existing", None, "near_duplicate_of_existing"]
    assert out["_duplicate_of"].to_list() == ["old", None, "old"]


def test_pipeline_dedups_a_batch_against_a_version(ws, tmp_path):
    first = curate(ws, [write_jsonl(tmp_path / "a" / "a.jsonl", [{"text": BASE}, {"text": "short unrelated line of text here"}])])
    batch = write_jsonl(tmp_path / "b" / "b.jsonl", [{"text": _edit(BASE, "last")}, {"text": "a genuinely new row of text for the batch"}])
    cfg = CurateConfig(near_dedup={"against": [first.version_id]}, steps=["normalize", "exact_dedup", "near_dedup", "split"])
    res = curate(ws, [batch], cfg)
    v = ws.datasets.get(res.version_id)
    assert v.manifest["parents"] == [first.version_id]
    rej = v.rejects().collect()
    assert rej["reason"].to_list() == ["near_duplicate_of_existing"]
    kept_first = ws.datasets.get(first.version_id).data().collect()
    assert rej["duplicate_of"][0] == kept_first.filter(pl.col("text") == BASE)["id"][0]


def test_a_version_is_deduplicated_against_a_slice_at_a_time(ws, tmp_path, monkeypatch):
    """Existing rows are read in slices of chunk_rows (keys per slice, then only candidates' texts), and
    give the decisions of one slice holding them all."""
    from assay.curate.pipeline import VersionTexts

    rng = random.Random(3)
    olds = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(60)]
    first = curate(ws, [write_jsonl(tmp_path / "a" / "a.jsonl", [{"text": t} for t in olds])], CurateConfig(steps=["normalize"]))
    assert ws.datasets.get(first.version_id).manifest["rows"] == 60
    news = [_edit(t, "zebra") for t in olds[::4]] + [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(20)]
    batch = write_jsonl(tmp_path / "b" / "b.jsonl", [{"text": t} for t in news])
    heights, real = [], VersionTexts.frames

    def frames(self, columns=None):
        for frame in real(self, columns):
            heights.append(frame.height)
            yield frame

    monkeypatch.setattr(VersionTexts, "frames", frames)
    rejects = []
    for chunk_rows in (7, 10_000):
        cfg = CurateConfig(near_dedup={"against": [first.version_id]}, read={"chunk_rows": chunk_rows}, steps=["near_dedup"])
        v = ws.datasets.get(curate(ws, [batch], cfg).version_id)
        rejects.append(v.rejects().collect().select("id", "reason", "duplicate_of").sort("id"))
        if chunk_rows == 7:
            assert max(heights) <= 7 and len(heights) > 8
    assert rejects[0].height == 15 and set(rejects[0]["reason"]) == {"near_duplicate_of_existing"}
    assert rejects[0].equals(rejects[1])
