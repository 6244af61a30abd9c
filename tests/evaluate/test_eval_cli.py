"""End to end through the installed `assay` command: curate → train → eval → verify → promote, and bad input.

The model is trained on the tiny pretrained base of `tests/evaluate/tiny.py`. One module-scoped
workspace holds the trained model and its passing report; a test that tampers with anything works
on its own copy of that workspace.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import run_cli, run_json

from . import tiny

CONFIG = """
[curate]
steps = ["normalize", "exact_dedup", "split"]

[train]
method = "lora"

[train.lora]
r = 8
alpha = 16.0
dropout = 0.0

[train.loop]
lr = 3e-3
max_steps = 100
epochs = 1000
batch_size = 8
max_seq_len = 64
warmup_ratio = 0.0
eval_every = 0
checkpoint_every = 0
precision = "fp32"

[eval]
resamples = 200
"""
SUITE = """
[checks.task]
max_examples = 24
max_new_tokens = 16
[checks.overfitting]
[checks.contamination]
"""
OUT_OF_REACH = "[task]\nmin_relative_gain = 50.0\n"
METRIC_KEYS = {"candidate", "baseline", "delta", "ci_low", "ci_high", "n"}


@dataclass
class Trained:
    root: Path
    ws: Path
    model: str
    run: dict[str, Any]  # `assay eval run --json` of the passing evaluation
    stderr: str  # what that run printed to stderr

    def assay(self, *args: str, ws: Path | None = None, check: int | None = 0) -> Any:
        return run_cli(*args, "--workspace", str(ws or self.ws), check=check)

    def json(self, *args: str, ws: Path | None = None, check: int | None = 0) -> dict[str, Any]:
        return json.loads(self.assay(*args, "--json", ws=ws, check=check).stdout)

    def copy(self, tmp_path: Path) -> Path:
        """A private copy of the workspace (model, reports, catalog, key) for tests that change it."""
        return Path(shutil.copytree(self.ws, tmp_path / "ws"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    base = tiny.shared_base(tmp_path_factory)
    root = tmp_path_factory.mktemp("cli")
    ws = root / "ws"
    tiny.write_jsonl(root / "task.jsonl", tiny.task_frame().select("prompt", "response", "split").to_dicts())
    for name, text in (("config.toml", CONFIG), ("suite.toml", SUITE), ("strict.toml", OUT_OF_REACH)):
        (root / name).write_text(text)
    run_cli("init", str(ws))
    data = run_json("curate", "run", str(root / "task.jsonl"), "--config", str(root / "config.toml"), "--name", "task-v1",
                    "--workspace", str(ws))
    assert data["kind"] == "curated" and data["counts"]
    model = run_json("train", "run", "--data", "task-v1", "--base", str(base), "--config", str(root / "config.toml"),
                     "--allow-unreviewed", "--name", "task-lora", "--workspace", str(ws))["model"]
    proc = run_cli("eval", "run", "task-lora", "--baseline", "base", "--suite", str(root / "suite.toml"),
                   "--config", str(root / "config.toml"), "--workspace", str(ws), "--json")
    return Trained(root, ws, model, json.loads(proc.stdout), proc.stderr)


def test_eval_run_json_has_the_documented_schema(trained: Trained) -> None:
    out = trained.run
    assert out["ok"] is True and out["report"].startswith("rp-") and out["model"] == trained.model
    assert out["baseline"]["kind"] == "base" and out["baseline"]["id"] is None
    assert out["gate"]["passed"] is True and out["gate"]["reasons"] == []
    assert [c["name"] for c in out["checks"]] == ["contamination", "task", "overfitting"]
    for c in out["checks"]:
        assert {"name", "version", "direction", "status", "metrics", "per_category"} <= set(c)
        assert isinstance(c["version"], int) and c["direction"] in ("higher_is_better", "lower_is_better")
        assert c["status"] == "pass", c
        for numbers in c["metrics"].values():
            assert set(numbers) >= METRIC_KEYS
    rouge = next(c for c in out["checks"] if c["name"] == "task")["metrics"]["rougeL"]
    assert rouge["candidate"] > rouge["baseline"] and rouge["delta"] == pytest.approx(rouge["candidate"] - rouge["baseline"])
    assert rouge["ci_low"] <= rouge["delta"] <= rouge["ci_high"] and rouge["n"] == 24


def test_eval_run_prints_no_library_warning(trained: Trained) -> None:
    # peft reads transformers' deprecated `is_gradient_checkpointing` when it loads the adapter: not the user's warning
    assert "Warning" not in trained.stderr, trained.stderr


def test_show_verify_and_the_report_file(trained: Trained) -> None:
    report = trained.run["report"]
    shown = trained.json("eval", "show", report)
    assert {k: shown[k] for k in ("report", "model", "checks")} == {k: trained.run[k] for k in ("report", "model", "checks")}
    assert shown["gate"]["passed"] is True
    text = trained.assay("eval", "show", report).stdout
    assert text.startswith("PASS") and "rougeL" in text and "report.html" in text
    body = json.loads((Path(shown["path"]) / "report.json").read_text())
    assert body["schema"].startswith("assay.eval-report/") and body["checks"] == trained.run["checks"]
    verified = trained.json("eval", "verify", report)
    assert verified == {"ok": True, "report": report, "problems": []}


def test_checks_policy_and_public_key(trained: Trained, tmp_path: Path) -> None:
    from assay.evaluate.attest import public_key
    from assay.evaluate.policy import PolicyConfig
    from assay.workspace import Workspace

    checks = trained.json("eval", "checks")["checks"]
    assert {c["name"] for c in checks} == {"task", "overfitting", "memorisation", "forgetting", "bias", "contamination"}
    assert all(c["version"] >= 1 and c["description"] for c in checks)

    text = trained.assay("eval", "policy").stdout
    assert PolicyConfig.model_validate(tomllib.loads(text)) == PolicyConfig()
    uncommented = re.sub(r"(?m)^# (\w+ = .*)$", r"\1", text)  # every default, switched on
    values = tomllib.loads(uncommented)
    assert values["forgetting"]["max_perplexity_ratio"] == 1.1 and values["task"]["min_relative_gain"] == 0.15
    assert PolicyConfig.model_validate(values) == PolicyConfig()

    pem = trained.assay("eval", "public-key").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "key.pem").write_text(pem)
    assert trained.assay("eval", "verify", trained.run["report"], "--key", str(tmp_path / "key.pem")).returncode == 0
    other, _ = Workspace.init(tmp_path / "other")
    (tmp_path / "other.pem").write_text(public_key(other))
    wrong = trained.json("eval", "verify", trained.run["report"], "--key", str(tmp_path / "other.pem"), check=1)
    assert not wrong["ok"] and any(p.startswith("signature:") for p in wrong["problems"])


def test_train_eval_promote_story(trained: Trained, tmp_path: Path) -> None:
    from assay.workspace import Workspace

    ws, report, model = trained.copy(tmp_path), trained.run["report"], trained.model
    promoted = trained.json("models", "promote", "task-lora", ws=ws)
    assert promoted["model"] == model and promoted["report"] == report and promoted["forced"] is False

    # a later failing report blocks promotion, with the reason
    failed = trained.json("eval", "run", model, "--baseline", "base", "--suite", str(trained.root / "suite.toml"),
                          "--policy", str(trained.root / "strict.toml"), "--config", str(trained.root / "config.toml"), ws=ws, check=1)
    assert failed["ok"] is False and failed["gate"]["passed"] is False
    assert any(r.startswith("task: rougeL") and "+5000%" in r for r in failed["gate"]["reasons"])
    refused = trained.assay("models", "promote", model, ws=ws, check=1)
    assert f"report {failed['report']}: the gate failed: task: rougeL" in refused.stderr

    # one changed byte of the adapter: verify and promote name the file
    adapter = Workspace.open(ws).models.get(model).path / "adapter_model.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 0x01
    adapter.write_bytes(bytes(data))
    problems = trained.json("eval", "verify", report, ws=ws, check=1)["problems"]
    assert any("adapter_model.safetensors" in p for p in problems)
    refused = trained.json("models", "promote", model, "--alias", "staging", ws=ws, check=1)
    assert "adapter_model.safetensors" in refused["error"] and refused["exit_code"] == 1

    # forcing needs a reason, and is recorded with it
    no_reason = trained.json("models", "promote", model, "--alias", "staging", "--force", ws=ws, check=2)
    assert "--reason" in no_reason["error"]
    forced = trained.json("models", "promote", model, "--alias", "staging", "--force", "--reason", "hotfix signed off", ws=ws)
    assert forced["forced"] is True and forced["alias"] == "staging"
    events = trained.json("models", "history", ws=ws)["events"]
    assert [(e["action"], e["alias"], bool(e["forced"])) for e in events] == [("promote", "production", False), ("promote", "staging", True)]
    assert events[0]["report_id"] == report and events[1]["reason"] == "hotfix signed off" and events[1]["actor"]
    listed = {m["id"]: m for m in trained.json("models", "list", ws=ws)["models"]}
    assert {"production", "staging", "task-lora"} <= set(listed[model]["tags"]) and listed[model]["status"] == "promoted"
    assert "production" in trained.assay("models", "list", ws=ws).stdout


def test_an_edited_report_fails_verification(trained: Trained, tmp_path: Path) -> None:
    from assay.workspace import Workspace

    ws = trained.copy(tmp_path)
    path = Workspace.open(ws).reports.get(trained.run["report"]).path / "report.json"
    path.write_bytes(path.read_bytes().replace(b'"passed":true', b'"passed":false', 1))
    problems = trained.json("eval", "verify", trained.run["report"], ws=ws, check=1)["problems"]
    assert any("report.json" in p for p in problems)
    refused = trained.assay("models", "promote", trained.model, ws=ws, check=1)
    assert "report.json" in refused.stderr


# ---- bad input ----

def eval_args(trained: Trained, suite: Path, model: str = "task-lora") -> list[str]:
    return ["eval", "run", model, "--baseline", "base", "--suite", str(suite), "--config", str(trained.root / "config.toml")]


def test_a_suite_naming_a_missing_file_is_exit_2_naming_it(trained: Trained, tmp_path: Path) -> None:
    suite = tiny.write_suite(tmp_path / "suite.toml", '[checks.forgetting]\ntext = ["nowhere/general.jsonl"]\nmultiple_choice = []\n')
    out = trained.json(*eval_args(trained, suite), check=2)
    assert "nowhere/general.jsonl" in out["error"] and str(tmp_path / "nowhere" / "general.jsonl") in out["error"]


def test_suite_files_are_checked_before_any_model_loads(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.errors import InputError
    from assay.evaluate import run
    from assay.workspace import Workspace

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the suite's files were checked")

    monkeypatch.setattr(run, "open_sides", no_loading)
    crows_without_bias_type(tmp_path / "pairs.csv")
    tiny.write_jsonl(tmp_path / "mc.jsonl", [{"question": "a cat sleeps in the", "choices": ["garden"], "answer": 0}])
    suite = tiny.write_suite(tmp_path / "suite.toml", '[checks.bias]\ncrows_pairs = ["pairs.csv"]\nbbq = []\ncounterfactual = []\n'
                             '[checks.forgetting]\ntext = []\nmultiple_choice = ["mc.jsonl"]\n')
    with pytest.raises(InputError) as bad:
        run.evaluate_model(Workspace.open(trained.ws), trained.model, baseline="base", suite=suite)
    assert "2 file(s) in the wrong format" in bad.value.message
    assert f"{tmp_path / 'pairs.csv'}:1: missing column" in bad.value.message
    assert f"{tmp_path / 'mc.jsonl'}:1:" in bad.value.message and "at least 2" in bad.value.message
    tiny.write_suite(suite, '[checks.bias]\ncrows_pairs = ["missing.csv"]\nbbq = []\ncounterfactual = []\n')
    with pytest.raises(InputError, match="missing.csv"):
        run.evaluate_model(Workspace.open(trained.ws), trained.model, baseline="base", suite=suite)


def crows_without_bias_type(path: Path) -> None:
    tiny.write_crows(path, tiny.crows_rows()[:4])
    path.write_text(path.read_text().replace(",bias_type,", ",kind,", 1))


def bbq_without_answers(path: Path) -> None:
    tiny.write_jsonl(path, [{"context": "the old man waits.", "question": "who waits?"}])


@pytest.mark.parametrize(("name", "write", "line", "field"), [
    ("pairs.csv", crows_without_bias_type, 1, "bias_type"),
    ("bbq.jsonl", bbq_without_answers, 1, "ans0"),
])
def test_a_bias_file_with_a_missing_column_is_exit_2_naming_file_and_line(
    trained: Trained, tmp_path: Path, name: str, write: Any, line: int, field: str,
) -> None:
    write(tmp_path / name)
    kind = "crows_pairs" if name.endswith(".csv") else "bbq"
    suite = tiny.write_suite(tmp_path / "suite.toml", f'[checks.bias]\n{kind} = ["{name}"]\ncounterfactual = []\n'
                             + ('bbq = []\n' if kind == "crows_pairs" else 'crows_pairs = []\n'))
    out = trained.json(*eval_args(trained, suite), check=2)
    assert f"{tmp_path / name}:{line}:" in out["error"] and f'"{field}"' in out["error"]


@pytest.fixture(scope="module")
def other_models(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """In the CLI workspace: a model on a private copy of the base, and one whose data has no test split."""
    from assay.workspace import Workspace

    ws = Workspace.open(trained.ws)
    base_copy = Path(shutil.copytree(tiny.shared_base(tmp_path_factory), tmp_path_factory.mktemp("base-copy") / "base"))
    train_only = tiny.task_frame().filter(pl.col("split") == "train")
    return {
        "on_copy": tiny.train(ws, tiny.task_frame(), base_copy, steps=2),
        "base_copy": base_copy,
        "no_test": tiny.train(ws, train_only, tiny.shared_base(tmp_path_factory), steps=2),
        "sha256": ws.models.get(trained.model).manifest["base"]["sha256"],
    }


def test_a_changed_or_missing_base_is_exit_2_naming_the_hash(trained: Trained, other_models: dict[str, Any]) -> None:
    suite = trained.root / "suite.toml"
    weights = other_models["base_copy"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    changed = trained.json(*eval_args(trained, suite, other_models["on_copy"]), check=2)
    assert other_models["sha256"][:12] in changed["error"] and "changed" in changed["error"]
    shutil.rmtree(other_models["base_copy"])
    gone = trained.json(*eval_args(trained, suite, other_models["on_copy"]), check=2)
    assert other_models["sha256"][:12] in gone["error"] + gone["hint"]


def test_no_test_split_and_no_task_files_is_exit_2_with_the_fix(trained: Trained, other_models: dict[str, Any], tmp_path: Path) -> None:
    suite = tiny.write_suite(tmp_path / "suite.toml", "[checks.task]\nmax_examples = 4\n")
    out = trained.json(*eval_args(trained, suite, other_models["no_test"]), check=2)
    assert "test split" in out["error"] and "[checks.task] files" in out["hint"]
