"""End to end on real data: GSM8K with planted duplicates, near-duplicates, PII, junk and leaked eval rows."""

import json
import random

import polars as pl
import pytest

from assay.curate.pipeline import curate
from tests.conftest import SHARED_DATA

GSM8K = SHARED_DATA / "gsm8k"
pytestmark = pytest.mark.skipif(not GSM8K.exists(), reason="shared GSM8K data not present")


def _planted(tmp_path):
    rng = random.Random(7)
    lines = (GSM8K / "train.jsonl").read_text().splitlines()
    rows, pii_base = [json.loads(x) for x in lines[:2000]], [json.loads(x) for x in lines[2000:2010]]
    test_rows = [json.loads(line) for line in (GSM8K / "test.jsonl").read_text().splitlines()[:200]]
    exact = [dict(r) for r in rows[:30]]
    near = []
    long_rows = [r for r in rows[100:] if len((r["question"] + " " + r["answer"]).split()) >= 90][:30]
    for r in long_rows:
        words = r["answer"].split()
        words[len(words) // 2] = "then"  # one word edit in a long answer
        near.append({**r, "answer": " ".join(words)})
    pii = [{**r, "answer": r["answer"] + " Contact me at grader.jones@mailbox.org or 415-555-0142."} for r in pii_base]
    junk = [{"question": "Tell me a joke about cats please", "answer": ""},
            {"question": "Solve this problem for me now", "answer": "As an AI language model, I cannot do that."}]
    leaked = [dict(r) for r in test_rows[:5]]
    all_rows = rows + exact + near + pii + junk + leaked
    rng.shuffle(all_rows)
    path = tmp_path / "gsm8k-dirty.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in all_rows) + "{not json\n")
    return path, {"exact": exact, "near": near, "pii": pii, "leaked": leaked}


def test_default_pipeline_on_gsm8k_removes_what_was_planted_and_why(ws, tmp_path):
    path, planted = _planted(tmp_path)
    cfg = ws.config.curate.model_copy(update={"decontaminate": ws.config.curate.decontaminate.model_copy(
        update={"evals": [str(GSM8K / "test.jsonl")]})})
    res = curate(ws, [path], cfg)
    v = ws.datasets.get(res.version_id)
    data, rejects = v.data().collect(), v.rejects().collect()
    by = {(s, r): n for s, r, n in rejects.group_by("step", "reason").len().iter_rows()}
    assert res.counts["quarantined"] == 1
    assert by[("exact_dedup", "exact_duplicate")] == 30
    near = rejects.filter(pl.col("step") == "near_dedup")
    planted_questions = {r["question"][:40] for r in planted["near"]}
    caught = set(near["prompt"].str.slice(0, 40)) & planted_questions
    assert caught == planted_questions, "every one-word edit of a long answer is caught (one of each pair goes)"
    natural = near.height - len(planted_questions)  # GSM8K's own near-copies (J ~ 0.9), found too
    similarity = near["detail"].str.extract(r"jaccard ([0-9.]+)").cast(pl.Float64)
    assert similarity.min() >= 0.5, "no false merges"
    hits = set(rejects.filter(pl.col("step") == "decontaminate")["decontam_hit"])
    assert {f"gsm8k/test.jsonl:{i}" for i in range(1, 6)} <= hits, "the five leaked test rows"
    overlap = len(hits) - 5  # GSM8K train rows that share 13-grams with test rows (templated problems)
    assert by[("quality", "empty_response")] == 1 and by[("quality", "boilerplate_response")] == 1
    assert sum(n for (s, _), n in by.items() if s == "quality") == 2, "ordinary GSM8K rows pass the quality filters"
    assert data.height == 2000 + 10 - natural - overlap, "the originals and the redacted PII rows are kept"
    redacted = data.filter(pl.col("pii_any"))
    assert redacted.height == 10 and redacted["response"].str.contains(r"\[EMAIL\]").all()
    assert not data["response"].str.contains("mailbox.org").any()
    assert set(near["duplicate_of"]) <= set(data["id"]) and near["detail"].str.starts_with("jaccard").all()
    assert set(data["split"]) == {"train", "val", "test"}
    clusters = data.group_by("dup_cluster").agg(pl.col("split").n_unique())
    assert clusters["split"].max() == 1
