"""The training recipe on a tiny model: learning, methods, outputs, multi-stage bookkeeping, errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from assay.errors import ConfigError, InputError
from assay.train import load_train_config, train
from assay.train import recipe as recipe_module
from assay.train import step as step_module

from .helpers import pair_frame, quick_config, text_frame

# peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` when loading an adapter.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def run(base: Path, tmp_path: Path, data=None, name: str = "run", **cfg_overrides):
    raw = quick_config(base)
    for key, value in cfg_overrides.items():
        if value is None:
            raw.pop(key, None)
            continue
        raw[key] = raw[key] | value if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return train(load_train_config(raw), pair_frame() if data is None else data, tmp_path / name, progress=False)


def losses(result, split="train"):
    return [m["loss"] for m in result.metrics if m["split"] == split]


def test_loss_decreases_on_a_learnable_task(tiny_base: Path, tmp_path: Path) -> None:
    result = run(tiny_base, tmp_path, loop={"lr": 2e-2, "max_steps": None, "epochs": 5, "eval_every": 6},
                 lora={"r": 8, "alpha": 16, "dropout": 0.0})
    train_losses, val_losses = losses(result), losses(result, "val")
    assert len(train_losses) == 30
    assert sum(train_losses[-5:]) / 5 < 0.6 * sum(train_losses[:5]) / 5
    assert val_losses[-1] < val_losses[0]
    manifest = result.manifest
    assert manifest["losses"]["best_val"] == min(val_losses)
    assert manifest["counts"]["optimizer_steps"] == 30 and manifest["counts"]["train_rows_used"] == 48


def test_output_folder_holds_adapter_tokenizer_config_metrics(tiny_base: Path, tmp_path: Path) -> None:
    result = run(tiny_base, tmp_path)
    names = {p.name for p in result.output_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "train_config.json",
            "metrics.jsonl", "training.json"} <= names
    assert json.loads((result.output_dir / "train_config.json").read_text())["loop"]["max_steps"] == 4
    lines = [json.loads(line) for line in (result.output_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["split"] for m in lines] == ["train"] * 4 + ["val"]
    base = result.manifest["base"]
    assert base["source"] == "local" and len(base["sha256"]) == 64
    assert result.manifest["libraries"]["torch"] == torch.__version__


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_adapter_loads_and_merges_to_the_same_logits(tiny_base: Path, tmp_path: Path, method: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = run(tiny_base, tmp_path, method=method)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), result.output_dir).eval()
    base_only = AutoModelForCausalLM.from_pretrained(tiny_base).eval()
    x = torch.randint(3, 200, (2, 12))
    with torch.no_grad():
        adapted = model(x).logits
        merged = model.merge_and_unload()(x).logits
        plain = base_only(x).logits
    torch.testing.assert_close(adapted, merged, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(adapted, plain, atol=1e-4), "training changed nothing"


def test_prompt_tuning_runs_and_loads(tiny_base: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = run(tiny_base, tmp_path, method="prompt_tuning", loop={"packing": False},
                 prompt_tuning={"num_virtual_tokens": 4}, lora=None)
    assert result.manifest["params"]["trainable"] == 4 * 32
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), result.output_dir)
    assert model(torch.randint(3, 200, (1, 6))).logits.shape[1] == 6 + 4


def test_full_fine_tuning_writes_a_whole_model(tiny_base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    result = run(tiny_base, tmp_path, method="full", lora=None)
    assert result.manifest["format"] == "full"
    assert result.manifest["params"]["trainable"] == result.manifest["params"]["total"]
    tuned, base = AutoModelForCausalLM.from_pretrained(result.output_dir), AutoModelForCausalLM.from_pretrained(tiny_base)
    assert not torch.equal(tuned.model.embed_tokens.weight, base.model.embed_tokens.weight)


def test_full_fine_tuning_refuses_a_model_over_the_limit(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="full.max_params"):
        run(tiny_base, tmp_path, method="full", lora=None, full={"max_params": 1000})


def test_gradient_checkpointing_and_accumulation_run(tiny_base: Path, tmp_path: Path) -> None:
    result = run(tiny_base, tmp_path, loop={"gradient_checkpointing": True, "grad_accum": 2, "batch_size": 2, "max_steps": 2})
    assert len(losses(result)) == 2 and all(m["tokens"] > 0 for m in result.metrics if m["split"] == "train")


def test_multi_stage_with_replay_bookkeeping(tiny_base: Path, tmp_path: Path) -> None:
    data = {"main": pair_frame(), "ds-domain": text_frame(16), "ds-general": text_frame(40, seed=9)}
    result = run(tiny_base, tmp_path, data=data, loop={"max_steps": None, "epochs": 1, "eval_every": 2},
                 stages=[{"name": "domain", "data": "ds-domain", "loop": {"lr": 1e-3}},
                         {"name": "sft", "replay": {"data": "ds-general", "share": 0.25}}])
    domain, sft = result.manifest["stages"]
    assert (domain["name"], domain["data"], domain["loop"]["lr"], domain["replay"]) == ("domain", "ds-domain", 1e-3, None)
    assert domain["val"]["rows"] == 0 and domain["selected"] == "last"
    assert (sft["data"], sft["replay"]["data"], sft["replay"]["share"]) == ("main", "ds-general", 0.25)
    assert sft["replay"]["rows_wanted"] == 16 and sft["replay"]["format"]["used"] == 16
    assert sft["replay"]["actual_share"] == pytest.approx(16 / 64)
    assert result.manifest["counts"]["replay_rows_used"] == 16
    assert result.manifest["data"] == ["ds-domain", "main", "ds-general"]
    steps = [(m["stage"], m["global_step"]) for m in result.metrics if m["split"] == "train"]
    assert [s for s, _ in steps] == ["domain"] * domain["steps"] + ["sft"] * sft["steps"]
    assert [g for _, g in steps] == list(range(1, len(steps) + 1))


def test_early_stopping_keeps_the_best_weights(tiny_base: Path, tmp_path: Path, monkeypatch) -> None:
    from assay.train import methods

    scripted = iter([1.0, 0.5, 0.9, 0.8, 0.7])
    snapshots = []

    def fake_validation(model, rows, **kwargs):
        snapshots.append(methods.trainable_state(model))
        return next(scripted)

    monkeypatch.setattr(recipe_module, "validation_loss", fake_validation)
    result = run(tiny_base, tmp_path, loop={"max_steps": 10, "eval_every": 1, "patience": 2})
    [stage] = result.manifest["stages"]
    assert (stage["steps"], stage["stopped_early"], stage["best_step"], stage["best_val_loss"]) == (4, True, 2, 0.5)
    from safetensors.torch import load_file

    saved = load_file(result.output_dir / "adapter_model.safetensors")
    best = {k: v for k, v in snapshots[1].items() if "lora_B" in k}
    assert len(best) == len([k for k in saved if "lora_B" in k])
    for name, tensor in best.items():
        short = name.replace(".default", "").replace("base_model.model.", "base_model.model.", 1)
        assert torch.equal(saved[short], tensor)


def test_out_of_memory_suggests_smaller_settings(tiny_base: Path, tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(step_module, "micro_batch_loss", boom)
    with pytest.raises(ConfigError, match="out of memory") as info:
        run(tiny_base, tmp_path)
    assert "gradient_checkpointing" in info.value.hint and "batch_size" in info.value.hint


def test_zero_usable_rows_is_a_clear_error(tiny_base: Path, tmp_path: Path) -> None:
    frame = pair_frame(4, 0).with_columns(pl.lit("").alias("response"))
    with pytest.raises(InputError, match="none of its 4 train rows is usable.*no_assistant_turn"):
        run(tiny_base, tmp_path, data=frame)


def test_missing_stage_data_is_named(tiny_base: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ds-missing"):
        run(tiny_base, tmp_path, stages=[{"name": "a", "data": "ds-missing"}])


def test_missing_base_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no base model"):
        train(load_train_config(), pair_frame(), tmp_path / "r", progress=False)


def test_bf16_autocast_runs(tiny_base: Path, tmp_path: Path) -> None:
    """The GPU default (bf16 autocast) exercised on CPU, where torch supports it too."""
    result = run(tiny_base, tmp_path, loop={"precision": "bf16", "max_steps": 2})
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in result.metrics)
