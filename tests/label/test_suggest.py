"""Suggestions inform curators without deciding for them: unit rules, and simulated curators who follow them.

A curator who keeps every pre-filled answer must not end up approving the rows curation flagged (personal
data, a quality check that fired or nearly fired); with `[label.suggest] decision = false` (the default)
nothing can be approved without the curator choosing it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from assay.label import signals as S
from assay.label.config import LabelConfig, SuggestConfig
from assay.label.pull import progress, pull
from assay.label.push import push
from assay.label.suggest import decision, issues, quality_rating, suggestions
from tests.label.fake_store import FakeStore

QUESTIONS = {"decision", "quality", "issues"}
THRESHOLDS = {"min_chars": 40, "min_words": 5, "min_alpha_word_ratio": 0.4, "max_duplicate_line_fraction": 0.3}


def _row(quality: float | None, pii: bool = False, low: float = 0.0, fmt: float = 0.0, copies: int = 1) -> dict:
    return {S.QUALITY: quality, S.PII_ANY: pii, S.STRENGTH["low_quality"]: low, S.STRENGTH["formatting"]: fmt,
            S.CLUSTER: copies}


def _by_question(row: dict, cfg: LabelConfig) -> dict:
    return {s["question_name"]: s for s in suggestions(row, cfg, QUESTIONS)}


def test_defaults_suggest_issues_and_quality_never_a_decision():
    cfg = LabelConfig()
    for row in (_row(0.99), _row(0.5, low=1.0), _row(0.6, pii=True), _row(None)):
        assert "decision" not in _by_question(row, cfg)
    flagged = _by_question(_row(0.52, pii=True, low=0.8, fmt=0.2), cfg)
    assert flagged["issues"]["value"] == ["pii", "low_quality"] and flagged["issues"]["score"] == [1.0, 0.8]
    assert flagged["quality"]["value"] == 2 and flagged["quality"]["agent"] == cfg.suggestion_agent
    assert _by_question(_row(0.99), cfg).keys() == {"quality"}  # a clean row: only a rating
    assert _by_question(_row(None), cfg) == {}  # nothing measured: nothing suggested


def test_quality_rating_follows_the_margin_and_never_claims_the_extremes():
    # score = 0.5 + tanh(m) / 2: m < 0.1 → 2, m < 0.4 → 3, else 4
    ratings = {m: quality_rating(_row(0.5 + math.tanh(m) / 2)) for m in (0.0, 0.09, 0.11, 0.39, 0.41, 5.0)}
    assert ratings == {0.0: 2, 0.09: 2, 0.11: 3, 0.39: 3, 0.41: 4, 5.0: 4}
    assert quality_rating(_row(None)) is None


def test_issue_strength_threshold_is_configurable():
    weak = _row(0.7, fmt=0.2)
    assert issues(weak, LabelConfig()) == []
    assert issues(weak, LabelConfig(suggest=SuggestConfig(issue_min_strength=0.14))) == [("formatting", 0.2)]
    assert issues(_row(0.7, pii=True), LabelConfig(issues=["factual_error"])) == []  # not an offered issue


def test_decision_only_where_the_signals_are_strong():
    cfg = LabelConfig(suggest=SuggestConfig(decision=True))
    assert decision(_row(0.95), [], cfg) == ("approve", 0.95)
    assert decision(_row(0.65), [], cfg) is None  # inside the thresholds, not far: the curator's call
    assert decision(_row(0.95, copies=3), [], cfg) is None  # removed copies: worth a look
    assert decision(_row(0.95), [("pii", 1.0)], cfg) is None  # redacted PII alone is no reason to reject
    assert decision(_row(0.5), [("low_quality", 0.95)], cfg) == ("reject", 0.95)
    assert decision(_row(0.55), [("low_quality", 0.6)], cfg) is None
    assert _by_question(_row(0.95), cfg)["decision"]["value"] == "approve"


# -- simulated curators ---------------------------------------------------------------------------------


def _version(ws, n: int = 60) -> tuple[str, set[str]]:
    """A curated version with realistic q_* spreads: returns its id and the rows curation flags (personal
    data, or within 10 % of a quality threshold)."""
    rng = np.random.default_rng(3)
    chars = rng.integers(40, 400, n)
    words = np.maximum(5, chars // 6 + rng.integers(-3, 3, n))
    alpha = rng.uniform(0.4, 1.0, n)
    dup = rng.choice([0.0, 0.1, 0.28, 0.3], n, p=[0.6, 0.2, 0.1, 0.1])
    pii = rng.random(n) < 0.1
    frame = pl.DataFrame({
        "id": [f"s{i:03d}" for i in range(n)], "source": "sim.jsonl", "source_line": list(range(1, n + 1)),
        "split": "train", "dup_cluster": [f"c{i}" for i in range(n)],
        "prompt": [f"question {i}" for i in range(n)], "response": [f"answer {i}" for i in range(n)],
        "q_chars": chars, "q_words": words, "q_alpha_ratio": alpha, "q_dup_line_frac": dup,
        "pii_email": pii.astype(int), "pii_any": pii,
    })
    margins = np.minimum.reduce([(chars - 40) / 40, (words - 5) / 5, (alpha - 0.4) / 0.4, (0.3 - dup) / 0.3])
    flagged = {rid for rid, m, p in zip(frame["id"], margins, pii, strict=True) if p or m < 0.1}
    vid = ws.datasets.write(frame, kind="curated", config={"quality": THRESHOLDS}).version.id
    return vid, flagged


def _follower(record) -> dict:
    """Keeps every pre-filled answer; must choose a decision where none is pre-filled, and does the
    obvious thing with what it was shown: reject when an issue is suggested, else approve."""
    shown = {s["question_name"]: s["value"] for s in record.suggestions}
    choice = shown.get("decision") or ("reject" if shown.get("issues") else "approve")
    return {"decision": choice, **{q: shown[q] for q in ("quality", "issues") if q in shown}}


@pytest.fixture
def ws(tmp_path, monkeypatch):
    from assay.workspace import Workspace

    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    return Workspace.init(tmp_path / "ws")[0]


@pytest.mark.parametrize("suggest_decision", [False, True])
def test_a_curator_who_follows_suggestions_approves_no_flagged_row(ws, suggest_decision):
    vid, flagged = _version(ws)
    assert 8 <= len(flagged) <= 40  # the simulation covers both kinds of row
    fake = FakeStore()
    config = ws.config.with_overrides({"label.suggest.decision": suggest_decision})
    push(ws, vid, dataset="sim", store=fake, config=config)
    records = fake.datasets["sim"].records
    decided = {rid for rid, r in records.items() if any(s["question_name"] == "decision" for s in r.suggestions)}
    if not suggest_decision:
        assert decided == set()  # Enter alone approves nothing: the decision is the curator's
    else:
        assert decided and not decided <= flagged  # strong signals both ways, not everywhere
        assert len(decided) < len(records)
    for rid, record in records.items():
        fake.vote("sim", "follower", rid, **_follower(record))
    kept_all = progress(ws, "sim", store=fake, config=config)["kept_suggestions"]
    assert {k["share"] for k in kept_all.values()} == {1.0} and kept_all["quality"]["answers"] == len(records)
    approved = ws.datasets.get(pull(ws, "sim", store=fake, config=config).version)
    kept = set(approved.data().collect()["id"])
    assert kept and not kept & flagged
    assert kept == set(records) - flagged  # and it loses no clean row either
    issues_of = {rid: {s["question_name"]: s["value"] for s in r.suggestions}.get("issues", []) for rid, r in records.items()}
    assert all("pii" in issues_of[rid] for rid in records if records[rid].metadata["personal_data"] == "yes")


def test_kept_suggestions_counts_answers_that_left_a_suggestion_as_it_was(ws):
    vid, _ = _version(ws, 20)
    fake = FakeStore()
    push(ws, vid, dataset="kept", store=fake)
    records = fake.datasets["kept"].records
    shown = {rid: {s["question_name"]: s["value"] for s in r.suggestions} for rid, r in records.items()}
    rated = [rid for rid in records if "quality" in shown[rid]]
    for i, rid in enumerate(rated):  # the curator changes the rating of every other record, tags no issue
        fake.vote("kept", "ann", rid, decision="approve", quality=shown[rid]["quality"] if i % 2 else 5)
    kept = progress(ws, "kept", store=fake)["kept_suggestions"]
    flagged = [rid for rid in rated if "issues" in shown[rid]]
    assert kept["quality"] == {"answers": len(rated), "kept": len(rated) // 2, "share": round((len(rated) // 2) / len(rated), 3)}
    assert flagged and kept["issues"] == {"answers": len(flagged), "kept": 0, "share": 0.0}
    manifest = ws.datasets.get(pull(ws, "kept", store=fake).version).manifest["review"]
    assert manifest["kept_suggestions"] == kept
