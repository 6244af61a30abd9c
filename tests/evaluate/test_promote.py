"""Promotion through the Python API: only on a passing, matching, verified report; forced and rejected with reasons.

A module-scoped workspace holds three tiny model versions: `a` and `b` each with a passing report,
`c` with none. Each test works on its own copy of that workspace, so the order of tests never matters.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assay.errors import CheckFailed, ConfigError, NotFoundError

from . import tiny

SUITE = "[checks.task]\nmax_examples = 4\nmax_new_tokens = 4\n"
PASSING = "[task]\nenabled = false\n"  # the gate then needs only the primary metric measured
FAILING = "[task]\nmin_relative_gain = 50.0\nmin_absolute_gain = 50.0\n"


@dataclass
class Models:
    root: Path
    a: str
    b: str
    c: str
    reports: dict[str, str]  # model -> its passing report

    def workspace(self, tmp_path: Path) -> Any:
        from assay.workspace import Workspace

        return Workspace.open(shutil.copytree(self.root / "ws", tmp_path / "ws"))


def evaluate(ws: Any, model: str, root: Path, policy: str, baseline: str = "base") -> Any:
    from assay.evaluate.run import evaluate_model

    (root / "policy.toml").write_text(policy)
    (root / "suite.toml").write_text(SUITE)
    return evaluate_model(ws, model, baseline=baseline, suite=root / "suite.toml", policy=root / "policy.toml",
                          config=ws.config.with_overrides({"eval.resamples": 100}))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    from assay.workspace import Workspace

    base = tiny.shared_base(tmp_path_factory)
    root = tmp_path_factory.mktemp("promote")
    ws, _ = Workspace.init(root / "ws")
    a, b, c = (tiny.train(ws, tiny.task_frame(), base, steps=2, seed=seed) for seed in (1, 2, 3))
    reports = {}
    for model in (a, b):
        outcome = evaluate(ws, model, root, PASSING)
        assert outcome.decision.passed, outcome.decision.reasons
        reports[model] = outcome.report_id
    return Models(root, a, b, c, reports)


def events(ws: Any) -> list[tuple[str, str, bool]]:
    from assay.evaluate.promote import history

    return [(e["action"], e["version_id"], bool(e["forced"])) for e in history(ws)]


def test_three_distinct_versions(models: Models) -> None:
    assert len({models.a, models.b, models.c}) == 3


def test_no_report_no_promotion(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import promote

    ws = models.workspace(tmp_path)
    with pytest.raises(CheckFailed, match=f"no evaluation report for {models.c}") as refused:
        promote(ws, models.c)
    assert "assay eval run" in refused.value.hint and "--force" in refused.value.hint
    assert events(ws) == [] and ws.models.get(models.c).status == "candidate"
    with pytest.raises(NotFoundError):
        ws.models.get("production")


def test_a_passing_report_promotes_and_is_recorded(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import history, promote

    ws = models.workspace(tmp_path)
    done = promote(ws, models.a)
    assert (done.model, done.alias, done.report, done.forced, done.previous) == (models.a, "production", models.reports[models.a], False, None)
    assert ws.models.get("production").id == models.a and ws.models.get(models.a).status == "promoted"
    (event,) = history(ws)
    assert event["action"] == "promote" and event["report_id"] == models.reports[models.a]
    assert event["actor"] and event["at"] and event["reason"] is None


def test_promoting_another_version_supersedes_the_previous_one(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import promote

    ws = models.workspace(tmp_path)
    promote(ws, models.a)
    done = promote(ws, models.b)
    assert done.previous == models.a and ws.models.get("production").id == models.b
    assert ws.models.get(models.a).status == "superseded" and ws.models.get(models.b).status == "promoted"
    assert events(ws) == [("promote", models.a, False), ("promote", models.b, False), ("demote", models.a, False)]


def test_the_latest_report_counts_and_a_failing_one_is_refused_with_its_reasons(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import latest_verdict, promote

    ws = models.workspace(tmp_path)
    failed = evaluate(ws, models.a, tmp_path, FAILING)
    assert not failed.decision.passed
    report, problems = latest_verdict(ws, models.a)
    assert report == failed.report_id
    (problem,) = problems
    assert problem.startswith(f"report {failed.report_id}: the gate failed: task: rougeL")
    with pytest.raises(CheckFailed, match="the gate failed: task: rougeL"):
        promote(ws, models.a)
    assert events(ws) == []


def test_force_needs_a_reason_and_is_recorded_with_it(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import history, promote

    ws = models.workspace(tmp_path)
    for reason in (None, "", "   "):
        with pytest.raises(ConfigError, match="--reason"):
            promote(ws, models.c, force=True, reason=reason)
    done = promote(ws, models.c, force=True, reason="incident fix, evaluated by hand", alias="staging")
    assert done.forced and done.report is None and ws.models.get("staging").id == models.c
    (event,) = history(ws)
    assert event["forced"] and event["reason"] == "incident fix, evaluated by hand" and event["alias"] == "staging"


def test_reject_needs_a_reason_and_marks_the_version(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import history, reject

    ws = models.workspace(tmp_path)
    with pytest.raises(ConfigError, match="reason"):
        reject(ws, models.b, reason=" ")
    reject(ws, models.b, reason="answers drift off format")
    assert ws.models.get(models.b).status == "rejected"
    (event,) = history(ws)
    assert (event["action"], event["version_id"], event["reason"]) == ("reject", models.b, "answers drift off format")


def test_a_report_only_counts_for_the_version_it_judged(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import latest_verdict

    ws = models.workspace(tmp_path)
    assert latest_verdict(ws, models.a) == (models.reports[models.a], [])
    assert latest_verdict(ws, models.c) == (None, [f"no evaluation report for {models.c}"])
    assert [e.id for e in ws.reports.for_model(models.b)] == [models.reports[models.b]]


def test_a_changed_adapter_file_blocks_promotion(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.promote import promote

    ws = models.workspace(tmp_path)
    config = ws.models.get(models.b).path / "adapter_config.json"
    original = config.read_text()
    config.write_text(original.replace('"r": 8', '"r": 9'))
    assert config.read_text() != original
    with pytest.raises(CheckFailed) as refused:
        promote(ws, models.b)
    assert "adapter_config.json" in refused.value.message and models.reports[models.b] in refused.value.message
    assert events(ws) == []


def test_the_promoted_version_is_the_baseline_when_asked(models: Models, tmp_path: Path) -> None:
    from assay.evaluate.loading import resolve_baseline
    from assay.evaluate.promote import promote

    ws = models.workspace(tmp_path)
    candidate = ws.models.get(models.b)
    with pytest.raises(NotFoundError, match="no model version is promoted"):
        resolve_baseline(ws, candidate, "promoted")
    assert resolve_baseline(ws, candidate, "auto") is None, "nothing promoted: the base"
    promote(ws, models.a)
    assert resolve_baseline(ws, candidate, "auto").id == models.a
    assert resolve_baseline(ws, ws.models.get(models.a), "auto") is None, "the promoted version is not its own baseline"
    outcome = evaluate(ws, models.b, tmp_path, PASSING, baseline="promoted")
    assert outcome.baseline == {"kind": "model", "id": models.a, "label": f"model version {models.a}", "shared_base": True}
    assert ws.reports.get(outcome.report_id).entry.parents == [models.b, models.a]
