"""`assay eval watch`: fresh data like the training data stays within the threshold; drifted data crosses it."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.conftest import run_cli, run_json

from . import tiny


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    """A workspace with the task adapter evaluated (task check only) and promoted on that report."""
    from assay.evaluate.promote import promote
    from assay.evaluate.run import evaluate_model
    from assay.workspace import Workspace

    root = tmp_path_factory.mktemp("watch")
    ws, _ = Workspace.init(root / "ws")
    base = tiny.shared_base(tmp_path_factory)
    model = tiny.train(ws, tiny.task_frame(), base, lr=2e-3, steps=100)
    suite = tiny.write_suite(root / "suite.toml", "[checks.task]\nmax_examples = 24\nmax_new_tokens = 16\n")
    policy = tiny.write_suite(root / "policy.toml", '[gate]\nprimary = "task.token_f1"\n[watch]\nmax_primary_drop = 0.10\n')
    outcome = evaluate_model(ws, model, baseline="base", suite=suite, policy=policy, config=ws.config.with_overrides({"eval.resamples": 200}))
    promote(ws, model, force=not outcome.decision.passed, reason="watch test")
    test = tiny.task_frame().filter(pl.col("split") == "test").select("prompt", "response")
    tiny.write_jsonl(root / "fresh.jsonl", test.to_dicts())
    drifted = [{"prompt": r["prompt"], "response": "It moved to the city across the sea."} for r in test.to_dicts()]
    tiny.write_jsonl(root / "drifted.jsonl", drifted)
    return ws, model, root, outcome


def test_fresh_data_like_the_training_data_stays_within_the_threshold(promoted):
    ws, model, root, outcome = promoted
    res = run_json("eval", "watch", "production", "--data", str(root / "fresh.jsonl"), "--suite", str(root / "suite.toml"),
                   "--policy", str(root / "policy.toml"), "-w", str(ws.root))
    reference = next(c for c in outcome.checks if c.name == "task").metrics["token_f1"].candidate
    assert res["ok"] and not res["crossed"] and res["model"] == model
    assert res["reference"] == pytest.approx(reference) and res["reference_report"] == outcome.report_id
    assert abs(res["value"] - reference) <= 0.10


def test_drifted_data_crosses_the_threshold_and_the_history_shows_both(promoted):
    ws, model, root, _ = promoted
    proc = run_cli("eval", "watch", model, "--data", str(root / "drifted.jsonl"), "--suite", str(root / "suite.toml"),
                   "--policy", str(root / "policy.toml"), "-w", str(ws.root), check=1)
    assert "CROSSED" in proc.stdout and "below" in proc.stdout
    shown = run_json("models", "show", model, "-w", str(ws.root))
    crossings = [p["crossed"] for p in shown["monitoring"]]
    assert True in crossings and crossings[-1] is True
    text = run_cli("models", "show", model, "-w", str(ws.root)).stdout
    assert "monitoring (token_f1" in text and "crossed" in text
    history = (ws.layout.derived / "monitoring" / f"{model}.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["data"].startswith("ds-"), "fresh files are curated into a version first"
