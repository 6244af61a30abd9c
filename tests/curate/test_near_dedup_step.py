import polars as pl
import pytest

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.near_dedup import EXISTING_KEY, NearDedupConfig
from assay.errors import ConfigError
from tests.conftest import write_jsonl

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
