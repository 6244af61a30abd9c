"""`assay batch run|status` on a tiny model with review skipped: the loop, reruns, failures, resume, bad files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assay.batch import load_batch, run_batch
from assay.errors import ConfigError
from tests.batch.conftest import LOOP, batch_file
from tests.conftest import ASSAY_BIN, run_cli, run_json


@pytest.fixture
def ws(tmp_path):
    from assay.workspace import Workspace

    workspace, _ = Workspace.init(tmp_path / "ws")
    return workspace


def test_a_batch_runs_the_loop_and_a_rerun_redoes_nothing(ws, tmp_path, tiny_base):
    failing = f'[[candidates]]\nname = "too-big"\ntrain = {{ method = "full", full = {{ max_params = 10 }}, {LOOP} }}\n'
    path = batch_file(tmp_path / "b", tiny_base, candidates=_two() + failing)
    first = run_batch(ws, path)
    assert first.state == "done" and first.summary.is_file()
    cands = first.data["candidates"]
    assert "exceeds full.max_params" in cands["too-big"]["train"]["error"], "a failed candidate is recorded"
    assert cands["lora"]["eval"]["passed"] and cands["dora"]["eval"]["passed"], "the others are still evaluated"
    promoted = first.data["stages"]["promote"]["model"]
    assert promoted in (cands["lora"]["train"]["model"], cands["dora"]["train"]["model"])
    assert ws.models.get("production").id == promoted
    model = ws.models.get(cands["lora"]["train"]["model"])
    assert model.manifest["review_skipped_reason"] == "synthetic test rows", "the skip reason travels with the model"
    report = json.loads((Path(cands["lora"]["eval"]["path"]) / "report.json").read_text())
    assert report["model"]["review"]["skipped_reason"] == "synthetic test rows"
    said: list[str] = []
    again = run_batch(ws, path, say=said.append)
    assert again.data["candidates"]["lora"]["train"]["model"] == cands["lora"]["train"]["model"]
    assert any("already trained" in s for s in said) and any("already evaluated" in s for s in said)
    summary = first.summary.read_text()
    assert "too-big" in summary and "training failed" in summary and "PASS" in summary


def _two() -> str:
    return (f'[[candidates]]\nname = "lora"\ntrain = {{ lora = {{ r = 4, alpha = 8.0 }}, {LOOP} }}\n\n'
            f'[[candidates]]\nname = "dora"\ntrain = {{ method = "dora", lora = {{ r = 4, alpha = 8.0 }}, {LOOP} }}\n')


def test_status_says_what_each_stage_made(ws, tmp_path, tiny_base):
    path = batch_file(tmp_path / "b", tiny_base, candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n')
    run_batch(ws, path)
    [status] = run_json("batch", "status", str(path), "-w", str(ws.root))["batches"]
    assert status["state"] == "done" and status["stages"]["curate"]["version"].startswith("ds-")
    assert status["candidate_rows"][0]["gate"] in ("PASS", "FAIL") and status["candidates"]["lora"]["train"]["seconds"] >= 0
    assert len(run_json("batch", "status", "-w", str(ws.root))["batches"]) == 1


def test_every_problem_of_a_batch_file_at_once(ws, tmp_path, tiny_base):
    path = batch_file(tmp_path / "b", tiny_base, review='mode = "skip"')
    text = path.read_text().replace('inputs = ["data/pairs.jsonl"]', 'inputs = ["data/missing.jsonl"]\ncolour = 1')
    text = text.replace("[curate]\n", "[curate]\nstepz = []\n") + '\n[[candidates]]\nname = "lora"\ntrain = { lora = { rank = 2 } }\n'
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_batch(ws, path)
    message = str(info.value)
    for fragment in ("batch.colour: unknown key", "curate.stepz: unknown key", "review.reason: required",
                     "batch.inputs: data/missing.jsonl not found", "the name 'lora' is used twice",
                     "candidates.2.train.lora.rank: unknown key"):
        assert fragment in message, fragment
    assert run_cli("batch", "run", str(path), "-w", str(ws.root), check=2).stderr.count("  - ") >= 6


def test_a_batch_killed_during_training_resumes_to_the_same_model(tmp_path, tiny_base):
    """Kill the batch after a training checkpoint; the rerun resumes and ends with the uninterrupted run's id."""
    ids = []
    for name, kill in (("straight", False), ("killed", True)):
        workspace = tmp_path / name / "ws"
        run_cli("init", str(workspace))
        path = batch_file(tmp_path / name, tiny_base, candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n')
        if kill:
            _kill_after_first_checkpoint(path, workspace)
        ids.append(run_json("batch", "run", str(path), "-w", str(workspace))["candidates"]["lora"]["train"]["model"])
    assert ids[0] == ids[1]


def _kill_after_first_checkpoint(path: Path, workspace: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ASSAY_HOME"} | {"NO_COLOR": "1"}
    proc = subprocess.Popen([str(ASSAY_BIN), "batch", "run", str(path), "-w", str(workspace)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if list((workspace / "runs").glob("*/checkpoints/latest")):
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the batch was killed during training"
    assert list((workspace / "runs").glob("*/checkpoints/latest")), "a checkpoint to resume from"


def test_a_retraining_batch_reuses_earlier_approved_rows(ws, tmp_path, tiny_base):
    """`batch.reuse`: the candidates train on the earlier approved version plus this batch's rows (a `mix`)."""
    first = run_batch(ws, batch_file(tmp_path / "first", tiny_base, candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n'))
    earlier = first.data["stages"]["data"]["version"]
    second_dir = tmp_path / "second"
    path = batch_file(second_dir, tiny_base, candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n')
    from tests.batch.conftest import write_pairs

    write_pairs(second_dir / "data" / "pairs.jsonl", n=40, seed=9)
    path.write_text(path.read_text().replace('name = "t"', 'name = "t2"\nreuse = ["' + earlier + '"]'))
    second = run_batch(ws, path)
    mix = ws.datasets.get(second.data["stages"]["data"]["version"])
    assert mix.kind == "mix" and earlier in mix.entry.parents
    rows = mix.data().collect()
    old, new = ws.datasets.get(earlier).data().collect(), ws.datasets.get(second.data["stages"]["curate"]["version"]).data().collect()
    assert set(rows["id"]) == set(old["id"]) | set(new["id"])
    assert ws.models.get(second.data["candidates"]["lora"]["train"]["model"]).manifest["data"] == [mix.id]


def test_argilla_unreachable_stops_cleanly_and_the_rerun_continues(ws, tmp_path, tiny_base, monkeypatch):
    path = batch_file(tmp_path / "b", tiny_base, review='mode = "argilla"',
                      candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n')
    monkeypatch.setenv("ARGILLA_API_URL", "http://127.0.0.1:9")  # nothing answers there
    monkeypatch.setenv("ARGILLA_API_KEY", "any")
    failed = run_cli("batch", "run", str(path), "-w", str(ws.root), check=2)
    assert "does not answer" in failed.stderr and "assay label serve" in failed.stderr
    [status] = run_json("batch", "status", str(path), "-w", str(ws.root))["batches"]
    assert status["stages"]["curate"]["version"].startswith("ds-") and "review" not in status["stages"]
    assert not list(ws.layout.runs.iterdir()) and ws.models.list() == [], "nothing after the failed stage"
