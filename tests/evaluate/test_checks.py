"""Each check catches what it exists for, on tiny models trained to trigger it, and passes a control.

Every model here is trained by assay itself (`run_training`) on the tiny pretrained base of
`tests/evaluate/tiny.py` and evaluated through `evaluate_model` with a small suite, so the numbers go
through the same loading, scoring, checks, gate and signed report as a user's run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from assay.evaluate.results import CheckResult

from . import tiny

TASK_SUITE = """
[checks.task]
max_examples = 24
max_new_tokens = 16
[checks.forgetting]
text = ["general.jsonl"]
multiple_choice = ["mc.jsonl"]
[checks.overfitting]
[checks.contamination]
"""
FORGETTING_SUITE = """
[checks.forgetting]
text = ["general.jsonl"]
multiple_choice = ["mc.jsonl"]
"""
BIAS_SUITE = """
[checks.bias]
crows_pairs = ["crows.csv"]
bbq = []
counterfactual = []
"""
MEMORISATION_SUITE = """
[checks.memorisation]
rows = 16
prefix_tokens = 8
continuation_tokens = 16
"""
LEAK_SUITE = """
[checks.task]
files = ["leak.jsonl"]
max_new_tokens = 16
[checks.contamination]
"""


@dataclass
class Lab:
    """A workspace on the tiny base, its eval files, and a small bootstrap."""

    ws: Any
    base: Path
    root: Path
    config: Any

    def evaluate(self, model: str, suite: str, policy: str | None = None) -> Any:
        from assay.evaluate.run import evaluate_model

        suite_file = tiny.write_suite(self.root / f"suite-{hashlib.sha256(suite.encode()).hexdigest()[:8]}.toml", suite)
        policy_file = tiny.write_suite(self.root / "policy.toml", policy) if policy is not None else None
        return evaluate_model(self.ws, model, baseline="base", suite=suite_file, policy=policy_file, config=self.config)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    from assay.workspace import Workspace

    base = tiny.shared_base(tmp_path_factory)
    root = tmp_path_factory.mktemp("checks")
    ws, _ = Workspace.init(root / "ws")
    tiny.write_jsonl(root / "general.jsonl", [{"text": t} for t in tiny.general_probe_texts()])
    tiny.write_jsonl(root / "mc.jsonl", tiny.mc_rows())
    tiny.write_crows(root / "crows.csv", tiny.crows_rows())
    trained_on = tiny.task_frame().filter(pl.col("split") == "train").select("prompt", "response").head(12)
    tiny.write_jsonl(root / "leak.jsonl", trained_on.to_dicts())
    return Lab(ws, base, root, ws.config.with_overrides({"eval.resamples": 200}))


def check(outcome: Any, name: str) -> CheckResult:
    return next(c for c in outcome.checks if c.name == name)


# ---- the models ----

@pytest.fixture(scope="module")
def task_model(lab: Lab) -> str:
    """The task adapter, trained with general-text replay (as a team would, against forgetting)."""
    general = tiny.add_data(lab.ws, tiny.general_frame())
    return tiny.train(lab.ws, tiny.task_frame(), lab.base, lr=2e-3, steps=100,
                      stages=[{"name": "sft", "replay": {"data": general, "share": 0.5}}])


@pytest.fixture(scope="module")
def task_outcome(lab: Lab, task_model: str) -> Any:
    return lab.evaluate(task_model, TASK_SUITE)


@pytest.fixture(scope="module")
def noise_outcome(lab: Lab) -> Any:
    """An adapter trained hard on random characters."""
    return lab.evaluate(tiny.train(lab.ws, tiny.noise_frame(), lab.base, lr=1e-2, steps=60), FORGETTING_SUITE)


# ---- memorisation ----

def test_memorisation_fails_a_model_that_memorised_its_rows(lab: Lab) -> None:
    model = tiny.train(lab.ws, tiny.recital_frame(), lab.base, method="full", lr=2e-3, steps=200)
    outcome = lab.evaluate(model, MEMORISATION_SUITE)
    result = check(outcome, "memorisation")
    train, held = result.metrics["train_near_rate"], result.metrics["heldout_near_rate"]
    assert result.status == "fail"
    assert train.candidate >= 0.9 and held.candidate <= 0.1, "it reproduces what it trained on, not what it never saw"
    assert train.baseline <= 0.1, "the base reproduces neither"
    assert result.metrics["train_exact_rate"].candidate > 2 * result.metrics["heldout_exact_rate"].candidate
    assert any(r.startswith("memorisation: near-copy rate on training rows") for r in outcome.decision.reasons)
    assert result.details["rows"] == {"train": 16, "held_out": 16, "pii": 0, "canary": 0}

    rows = {r["id"]: r for r in tiny.recital_frame().filter(pl.col("split") == "train").iter_rows(named=True)}
    worst = result.details["worst"]
    assert len(worst) == 10
    for row in worst:  # traceable to the file and line it came from
        assert row["id"] in rows and row["split"] == "train"
        assert (row["source"], row["source_line"]) == ("recital.jsonl", rows[row["id"]]["source_line"])
        assert row["similarity"] >= 0.9 and row["expected"] in rows[row["id"]]["response"]


def test_memorisation_passes_a_lightly_trained_model(lab: Lab) -> None:
    model = tiny.train(lab.ws, tiny.recital_frame(), lab.base, lr=1e-3, steps=10, rank=4)
    result = check(lab.evaluate(model, MEMORISATION_SUITE), "memorisation")
    assert result.status == "pass", result.reasons
    assert result.metrics["train_near_rate"].candidate <= 0.05


# ---- forgetting ----

def test_forgetting_fails_an_adapter_trained_on_noise(noise_outcome: Any) -> None:
    result = check(noise_outcome, "forgetting")
    ppl = result.metrics["perplexity_ratio"]
    assert result.status == "fail"
    assert ppl.kind == "ratio" and ppl.delta == pytest.approx(ppl.candidate / ppl.baseline)
    assert ppl.ci_low > 1.10, "even the interval's lower end is above the policy's ratio"
    assert any(r.startswith("forgetting: perplexity on general text rose") for r in noise_outcome.decision.reasons)
    assert result.metrics["acc"].delta < -0.05, "the multiple-choice items the base answers are lost too"
    assert set(result.per_category) == {"grammar"}


def test_forgetting_passes_the_task_adapter(task_outcome: Any, noise_outcome: Any) -> None:
    task, noise = check(task_outcome, "forgetting"), check(noise_outcome, "forgetting")
    assert task.status == "pass", task.reasons
    assert task.metrics["perplexity_ratio"].delta <= 1.10
    assert task.metrics["perplexity_ratio"].delta < noise.metrics["perplexity_ratio"].delta / 10
    assert task.metrics["acc"].delta >= -0.05


# ---- bias ----

def test_bias_fails_a_model_nudged_toward_the_stereotypes(lab: Lab) -> None:
    outcome = lab.evaluate(tiny.train(lab.ws, tiny.nudge_frame("sent_more"), lab.base), BIAS_SUITE)
    result = check(outcome, "bias")
    pct = result.metrics["pct_stereotype"]
    assert result.status == "fail"
    assert pct.delta > 2 and pct.delta == pytest.approx(pct.candidate - pct.baseline)
    assert any(r.startswith("bias: pct_stereotype rose") for r in outcome.decision.reasons)
    assert set(result.per_category) == {"age", "gender", "socioeconomic"}
    for numbers in result.per_category.values():
        assert numbers["pct_stereotype"].n == 8 and numbers["likelihood_diff"].n == 8
        assert 0 <= numbers["pct_stereotype"].candidate <= 100
    assert set(result.data) == {"crows.csv"}


def test_bias_passes_a_model_nudged_away_from_the_stereotypes(lab: Lab) -> None:
    result = check(lab.evaluate(tiny.train(lab.ws, tiny.nudge_frame("sent_less"), lab.base), BIAS_SUITE), "bias")
    assert result.status == "pass", result.reasons
    assert result.metrics["pct_stereotype"].delta < 0


# ---- contamination ----

def test_an_eval_set_that_overlaps_training_is_invalid(lab: Lab, task_model: str) -> None:
    outcome = lab.evaluate(task_model, LEAK_SUITE)
    contamination, task = check(outcome, "contamination"), check(outcome, "task")
    (found,) = contamination.details["sets"]
    assert found["name"] == "leak.jsonl" and found["invalid"]
    assert found["overlapping_rows"] == found["rows"] == 12
    assert contamination.status == "fail"
    assert task.status == "invalid" and any("leak.jsonl" in r for r in task.reasons)
    assert not outcome.decision.passed
    assert any(r.startswith("task: invalid") and "cannot count as a pass" in r for r in outcome.decision.reasons)


def test_a_clean_test_split_is_not_contaminated(task_outcome: Any, task_model: str, lab: Lab) -> None:
    result = check(task_outcome, "contamination")
    test_sets = [s for s in result.details["sets"] if s["name"].endswith(":test")]
    assert result.status == "pass" and test_sets and all(s["overlapping_rows"] == 0 for s in test_sets)
    assert {s["name"] for s in result.details["sets"]} >= {"general.jsonl", "mc.jsonl"}


# ---- task ----

def test_the_task_adapter_beats_the_base_and_passes_the_gate(task_outcome: Any) -> None:
    result = check(task_outcome, "task")
    rouge = result.metrics["rougeL"]
    assert task_outcome.decision.passed, task_outcome.decision.reasons
    assert result.status == "pass" and rouge.n == 24
    assert rouge.candidate > rouge.baseline and rouge.ci_low >= 0.15 * rouge.baseline
    assert task_outcome.decision.primary["metric"] == "rougeL"
    assert task_outcome.decision.primary["candidate"] == rouge.candidate
    sample = result.details["samples"][0]
    assert sample["candidate"] != sample["baseline"] and sample["reference"].startswith("It lives")


def test_the_task_rule_fails_when_the_gain_is_out_of_reach(lab: Lab, task_model: str, task_outcome: Any) -> None:
    policy = "[task]\nmin_relative_gain = 50.0\n"
    outcome = lab.evaluate(task_model, TASK_SUITE, policy)
    rouge = check(outcome, "task").metrics["rougeL"]
    assert not outcome.decision.passed and check(outcome, "task").status == "fail"
    (reason,) = [r for r in outcome.decision.reasons if r.startswith("task:")]
    assert "rougeL" in reason and "+5000%" in reason and f"{rouge.baseline:.4f}" in reason and f"{rouge.ci_low:+.4f}" in reason
    assert rouge == check(task_outcome, "task").metrics["rougeL"], "same model, suite and seed: same numbers"


def test_reports_are_published_with_the_outcome(lab: Lab, task_outcome: Any) -> None:
    from assay.evaluate.attest import read, verify

    _, body = read(lab.ws, task_outcome.report_id)
    assert body["gate"]["passed"] is True and body["model"]["id"] == task_outcome.model
    assert [c["name"] for c in body["checks"]] == [c.name for c in task_outcome.checks]
    assert verify(lab.ws, task_outcome.report_id) == []
