import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.decontaminate import EVALS_KEY, DecontaminateConfig, find_hits
from assay.curate.steps.split import SplitConfig
from assay.errors import ConfigError
from tests.conftest import SHARED_DATA, write_jsonl

EVAL = "Natalia sold clips to 48 of her friends in April and then she sold half as many clips in May how many"


def _evals(*texts):
    return pl.DataFrame({"eval_set": ["gsm8k-test"] * len(texts), "eval_row": [str(i + 1) for i in range(len(texts))], "text": list(texts)})


def test_find_hits_long_overlap_case_and_punctuation_insensitive():
    texts = pl.Series(["Intro. " + EVAL.upper() + "?! and more", "Natalia sold clips to 48 friends", "unrelated text " * 5])
    hits = find_hits(texts, _evals("x y z", EVAL), DecontaminateConfig())
    assert hits == [1, None, None]


def test_short_eval_rows_match_only_whole():
    short = "what is the capital city of france today"  # 8 words
    texts = pl.Series([f"Q: {short}? A: Paris", "what is the capital city of spain today"])
    assert find_hits(texts, _evals(short), DecontaminateConfig()) == [0, None]
    assert find_hits(texts, _evals(short), DecontaminateConfig(min_ngram=9, ngram=13)) == [None, None]


def test_decontaminate_step_drop_and_flag():
    df = pl.DataFrame({"id": ["a", "b"], "text": [EVAL, "clean row"]})
    ctx = StepContext(content_columns=("text",), extra={EVALS_KEY: _evals(EVAL)})
    out = REGISTRY["decontaminate"].fn(df.lazy(), DecontaminateConfig(), ctx).collect()
    assert out["_reason"].to_list() == ["eval_overlap", None]
    assert out["decontam_hit"].to_list() == ["gsm8k-test:1", None]
    assert "gsm8k-test:1" in out["_detail"][0]
    flagged = REGISTRY["decontaminate"].fn(df.lazy(), DecontaminateConfig(action="flag"), ctx).collect()
    assert flagged["_reason"].to_list() == [None, None] and flagged["decontam_hit"][0] == "gsm8k-test:1"


def test_min_ngram_above_ngram_is_rejected():
    with pytest.raises(ValueError, match="min_ngram"):
        DecontaminateConfig(ngram=8, min_ngram=10)


def _split(df, **cfg):
    return REGISTRY["split"].fn(df.lazy(), SplitConfig(**cfg), StepContext(seed=3)).collect()


def test_split_ratios_and_determinism():
    df = pl.DataFrame({"id": [f"r{i}" for i in range(2000)]})
    out = _split(df)
    counts = dict(out.group_by("split").len().iter_rows())
    assert abs(counts["train"] - 1800) <= 2 and abs(counts["val"] - 100) <= 2 and abs(counts["test"] - 100) <= 2
    shuffled = _split(df.sample(fraction=1.0, shuffle=True, seed=1))
    assert dict(shuffled.select("id", "split").iter_rows()) == dict(out.select("id", "split").iter_rows())


def test_split_stratified():
    df = pl.DataFrame({"id": [f"r{i}" for i in range(1000)], "lang": ["en"] * 800 + ["de"] * 200})
    out = _split(df, stratify_by="lang", ratios={"train": 0.5, "test": 0.5})
    by = out.group_by("lang", "split").len().sort("lang", "split")
    assert by.filter(pl.col("lang") == "de")["len"].to_list() == [100, 100]


def test_split_unknown_column_and_bad_ratios():
    with pytest.raises(ConfigError, match="nope"):
        _split(pl.DataFrame({"id": ["a"]}), stratify_by="nope")
    with pytest.raises(ValueError, match="sum to 1"):
        SplitConfig(ratios={"train": 0.5, "test": 0.2})


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=1, max_size=120), st.integers(0, 3))
def test_split_never_separates_a_cluster(clusters, seed):
    df = pl.DataFrame({"id": [f"r{i}" for i in range(len(clusters))], "dup_cluster": [f"c{c}" for c in clusters],
                       "lang": [("en", "de")[c % 2 if i % 3 else 1 - c % 2] for i, c in enumerate(clusters)]})
    for kw in ({}, {"stratify_by": "lang"}):
        out = REGISTRY["split"].fn(df.lazy(), SplitConfig(**kw), StepContext(seed=seed)).collect()
        assert out.group_by("dup_cluster").agg(pl.col("split").n_unique())["split"].max() == 1


@pytest.mark.skipif(not (SHARED_DATA / "gsm8k").exists(), reason="shared GSM8K data not present")
def test_curate_decontaminates_against_gsm8k_test(ws, tmp_path):
    test_rows = pl.read_ndjson(SHARED_DATA / "gsm8k" / "test.jsonl").head(50).to_dicts()
    train = [{"question": f"Unrelated question number {i} about trains?", "answer": f"It is {i}."} for i in range(30)]
    leaked = [{"question": r["question"], "answer": "my own answer"} for r in test_rows[:5]]
    src = write_jsonl(tmp_path / "train.jsonl", train + leaked)
    cfg = CurateConfig(decontaminate={"evals": [str(SHARED_DATA / "gsm8k" / "test.jsonl")]})
    res = curate(ws, [src], cfg)
    v = ws.datasets.get(res.version_id)
    rejects = v.rejects().collect().filter(pl.col("step") == "decontaminate")
    assert rejects.height == 5
    assert sorted(rejects["decontam_hit"].to_list()) == sorted(f"gsm8k/test.jsonl:{i}" for i in range(1, 6))
    assert v.manifest["evals"][0]["source"] == "gsm8k/test.jsonl"
    assert set(v.data().collect()["split"]) <= {"train", "val", "test"}
