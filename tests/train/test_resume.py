"""Checkpoints: a killed run resumes to exactly the weights of an uninterrupted one; writes are atomic."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from assay.errors import ConfigError
from assay.train import checkpoint, load_train_config, train

from .helpers import pair_frame, quick_config, text_frame


class Killed(Exception):
    """Stands in for a SIGKILL between two steps."""


def config(base: Path, **loop):
    raw = quick_config(base, max_steps=None, epochs=1, eval_every=2, checkpoint_every=3, keep_checkpoints=2, **loop)
    raw["lora"]["dropout"] = 0.1  # draws from the torch RNG every step, so RNG restore matters
    raw["stages"] = [{"name": "a", "loop": {"epochs": 2}}, {"name": "b", "data": "ds-text", "loop": {"epochs": 3, "max_steps": 5}}]
    return load_train_config(raw)


def data():
    return {"main": pair_frame(24, 8), "ds-text": text_frame(40)}


def kill_at(step: int):
    def hook(info):
        if info.global_step == step:
            raise Killed

    return hook


def train_metrics(folder: Path) -> list[dict]:
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k != "tokens_per_s"} for m in lines]


@pytest.fixture(scope="module")
def uninterrupted(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train(config(tiny_base), data(), tmp_path_factory.mktemp("full") / "run", progress=False)
    assert [s["steps"] for s in result.manifest["stages"]] == [6, 5]
    return result.output_dir


def assert_same_output(left: Path, right: Path) -> None:
    a, b = load_file(left / "adapter_model.safetensors"), load_file(right / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    assert train_metrics(left) == train_metrics(right)


@pytest.mark.parametrize(("kill", "latest"), [(5, "step-00000003"), (8, "step-00000006-end"), (10, "step-00000009")])
def test_killed_run_resumes_to_the_same_weights(tiny_base: Path, tmp_path: Path, uninterrupted: Path, kill: int, latest: str) -> None:
    """Killed mid-epoch, right after a stage ended, and inside the second stage."""
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(config(tiny_base), data(), run_dir, progress=False, on_step=kill_at(kill))
    assert checkpoint.latest_name(run_dir) == latest
    resumed = train(config(tiny_base), data(), run_dir, progress=False)
    assert_same_output(uninterrupted, resumed.output_dir)
    assert resumed.manifest["counts"]["optimizer_steps"] == 11


def test_failed_checkpoint_write_keeps_the_previous_one(tiny_base: Path, tmp_path: Path, uninterrupted: Path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    real_save, calls = torch.save, []

    def disk_full_on_second_checkpoint(obj, path, *args, **kwargs):
        if Path(path).name == checkpoint.RNG:
            calls.append(path)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", disk_full_on_second_checkpoint)
    with pytest.raises(checkpoint.CheckpointError, match="No space left on device") as info:
        train(config(tiny_base), data(), run_dir, progress=False)
    assert "step-00000003" in info.value.hint
    assert checkpoint.latest_name(run_dir) == "step-00000003"
    assert not list((run_dir / checkpoint.CHECKPOINTS).glob(".staging-*"))
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    resumed = train(config(tiny_base), data(), run_dir, progress=False)
    assert_same_output(uninterrupted, resumed.output_dir)


def test_old_checkpoints_are_pruned(tiny_base: Path, tmp_path: Path) -> None:
    train(config(tiny_base), data(), tmp_path / "run", progress=False)
    kept = sorted(p.name for p in (tmp_path / "run" / checkpoint.CHECKPOINTS).glob("step-*"))
    assert kept == ["step-00000009", "step-00000011-end"]


def test_run_dir_of_another_config_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(Killed):
        train(config(tiny_base), data(), tmp_path / "run", progress=False, on_step=kill_at(4))
    with pytest.raises(ConfigError, match="different run"):
        train(config(tiny_base, lr=1e-3), data(), tmp_path / "run", progress=False)


def test_leftovers_of_a_killed_writer_are_removed(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(Killed):
        train(config(tiny_base), data(), tmp_path / "run", progress=False, on_step=kill_at(4))
    root = tmp_path / "run" / checkpoint.CHECKPOINTS
    (root / ".staging-99999-step-00000006").mkdir()
    (root / ".staging-99999-1a2b3c4d-latest").write_text("step-00000006\n")  # a half-replaced pointer
    train(config(tiny_base), data(), tmp_path / "run", progress=False)
    assert not list(root.glob(".*"))
