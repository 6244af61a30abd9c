"""Blind human evaluation: push both sides as A/B, raters vote, pull a signed report that gates on the win rate.

On the in-memory review store (fast, every rule), then on the real embedded Argilla: what Argilla stores
is read back and searched for anything that would tell a rater which side is which.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from assay.evaluate.human.pull import progress_comparison, pull_comparison, read_mapping
from assay.evaluate.human.push import push_comparison
from tests.label.fake_store import FakeStore
from tests.train.helpers import build_model, build_tokenizer, pair_frame, quick_config


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("human-base")
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def trained(ws, base: Path, monkeypatch, tmp_path) -> str:
    """A model version whose data has a test split with categories."""
    from assay.train import load_train_config
    from assay.train.run import run_training

    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    frame = pair_frame(40, 8).with_columns(
        pl.when(pl.int_range(pl.len()) < 12).then(pl.lit("test")).otherwise(pl.col("split")).alias("split"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("colours")).otherwise(pl.lit("shapes")).alias("category"))
    data = ws.datasets.write(frame, kind="approved", config={"t": "human"}).version.id
    return run_training(ws, data, None, load_train_config(quick_config(base)), progress=False)


def answers(items):
    """Stand-in for the model calls: the candidate answers right, the baseline answers 'no idea'."""
    return [i.reference for i in items], ["no idea" for _ in items]


def candidate_side(record_id: str, mapping: dict) -> str:
    return "A" if mapping["items"][record_id]["a"] == "candidate" else "B"


def test_push_vote_pull_on_the_review_store(ws, tiny_base, monkeypatch, tmp_path):
    model = trained(ws, tiny_base, monkeypatch, tmp_path)
    store = FakeStore()
    pushed = push_comparison(ws, model, baseline="base", sample=10, store=store, answers=answers)
    assert pushed.records == 10 and pushed.added == 10 and pushed.min_submitted == 2
    again = push_comparison(ws, model, baseline="base", sample=10, store=store, answers=answers)
    assert again.dataset == pushed.dataset and again.added == 0, "a repeated push adds nothing"
    mapping = read_mapping(ws, pushed.dataset)
    sides = [item["a"] for item in mapping["items"].values()]
    assert "candidate" in sides and "baseline" in sides, "the order is random per record"
    for rid in mapping["items"]:
        store.vote(pushed.dataset, "ann", rid, preference=candidate_side(rid, mapping), rating_a=4, rating_b=2)
        store.vote(pushed.dataset, "bob", rid, preference="tie")
    progress = progress_comparison(ws, pushed.dataset, store=store)
    assert progress["completed"] == 10 and progress["votes"] == {"ann": 10, "bob": 10}
    outcome = pull_comparison(ws, pushed.dataset, store=store, name="human-1")
    human = outcome.human
    assert human["rates"]["win"]["estimate"] == 0.5 and human["rates"]["tie"]["estimate"] == 0.5
    assert human["win_rate"]["estimate"] == 0.75 and human["win_rate"]["low"] >= 0.5 and outcome.decision.passed
    assert set(human["per_category"]) == {"colours", "shapes"} and len(human["disputed"]) == 10
    report = json.loads((outcome.path / "report.json").read_text())
    assert report["human"]["win_rate"]["estimate"] == 0.75 and ws.reports.get("human-1").id == outcome.report_id
    from assay.evaluate.attest import verify

    assert verify(ws, outcome.report_id) == []


def test_a_losing_candidate_fails_the_human_rule_and_blocks_promotion(ws, tiny_base, monkeypatch, tmp_path):
    from assay.errors import CheckFailed
    from assay.evaluate.promote import promote

    model = trained(ws, tiny_base, monkeypatch, tmp_path)
    store = FakeStore()
    pushed = push_comparison(ws, model, baseline="base", sample=12, store=store, answers=answers)
    mapping = read_mapping(ws, pushed.dataset)
    for rid in mapping["items"]:
        loser = "B" if candidate_side(rid, mapping) == "A" else "A"
        for rater in ("ann", "bob"):
            store.vote(pushed.dataset, rater, rid, preference=loser)
    outcome = pull_comparison(ws, pushed.dataset, store=store)
    assert not outcome.decision.passed and outcome.human["win_rate"]["estimate"] == 0.0
    assert any(r.startswith("human: the candidate's win rate") for r in outcome.decision.reasons)
    with pytest.raises(CheckFailed, match="win rate"):
        promote(ws, model)


@pytest.mark.argilla
def test_blind_comparison_on_the_real_server_leaks_no_side(review_workspace, tiny_base, monkeypatch, tmp_path):
    from assay.label.simulated import ensure_reviewers, simulate_reviews

    ws = review_workspace
    model = trained(ws, tiny_base, monkeypatch, tmp_path)
    pushed = push_comparison(ws, model, baseline="base", sample=12, dataset="human-blind-test", answers=answers)
    mapping = read_mapping(ws, pushed.dataset)
    stored = _everything_argilla_stores(ws, pushed.dataset)
    for secret in (model, "candidate", "baseline", *(item["item"] for item in mapping["items"].values())):
        assert secret not in stored, f"{secret!r} is visible in Argilla"

    def judge(name: str, record: dict) -> dict:
        if name.endswith("2"):
            return {"preference": "A", "comment": "I always pick A"}  # position bias, whatever the answers
        return {"preference": "A" if record["fields"]["answer_a"] != "no idea" else "B", "rating_a": 4, "rating_b": 3}

    simulate_reviews(ws, pushed.dataset, ensure_reviewers(ws, 2), judge)
    outcome = pull_comparison(ws, pushed.dataset)
    bias = outcome.human["position_bias"]["per_rater"]
    assert bias["simulated-reviewer-2"]["estimate"] == 1.0 and bias["simulated-reviewer-1"]["estimate"] < 1.0
    assert outcome.human["rates"]["win"]["estimate"] > 0.5
    assert outcome.human["raters"] == ["simulated-reviewer-1", "simulated-reviewer-2"]
    html = (outcome.path / "report.html").read_text()
    assert "Human evaluation" in html and "I always pick A" in html


def _everything_argilla_stores(ws, dataset: str) -> str:
    """The dataset's settings and every record (fields, metadata, external id, suggestions), as the owner sees them."""
    from assay.label.client import using_store

    with using_store(ws.root, ws.config.label) as store:
        ref = store.find(dataset)
        base = f"/api/v1/datasets/{ref.id}"
        parts = [store.request("GET", base), store.request("GET", f"{base}/fields"), store.request("GET", f"{base}/questions"),
                 store.request("GET", f"/api/v1/me/datasets/{ref.id}/metadata-properties"),
                 list(store._records(ref.id, include=["responses", "suggestions", "vectors"]))]
    return json.dumps(parts)
