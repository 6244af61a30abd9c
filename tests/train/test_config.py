"""Config validation: every problem at once, conflicts name both fields, stage overrides merge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.train.config import MAIN_DATA, LoopSettings, TrainConfig, load_train_config


def problems(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_train_config(raw)
    return str(info.value)


def test_defaults_are_lora_one_stage() -> None:
    cfg = load_train_config()
    assert cfg.method == "lora" and cfg.lora.target_modules == "all-linear"
    [(stage, loop)] = cfg.resolved_stages()
    assert stage.data is None and loop == LoopSettings()
    assert cfg.data_refs() == [MAIN_DATA]


def test_every_problem_reported_at_once() -> None:
    text = problems(
        {
            "method": "prompt_tuning",
            "lora": {"r": 4},
            "loop": {"lr": -1, "pacing": True, "patience": 2, "eval_every": 0, "warmup_ratio": 1.5},
            "stages": [{"name": "a", "loop": {"batchsize": 3}}, {"name": "a"}],
            "sed": 1,
        }
    )
    expected = [
        "loop.lr", "loop.warmup_ratio", "loop.pacing: unknown key (did you mean `packing`?)",
        "stages.0.loop.batchsize: unknown key (did you mean `batch_size`?)", "sed: unknown key (did you mean `seed`?)",
        "lora.r is set but method = 'prompt_tuning' does not use it", "stages.0.name and stages.1.name are both 'a'",
        "loop.packing = true conflicts with method = 'prompt_tuning'", "loop.patience = 2", "loop.eval_every = 0",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert "9 problem(s)" in text


def test_conflict_on_a_broken_field_is_not_repeated() -> None:
    text = problems({"method": "prompt_tuning", "loop": {"packing": "sometimes"}})
    assert "loop.packing" in text and "conflicts with" not in text


def test_conflict_names_the_stage_that_sets_the_value() -> None:
    text = problems({"method": "prompt_tuning", "loop": {"packing": False}, "stages": [{"name": "s", "loop": {"packing": True}}]})
    assert "stages.0.loop.packing = true conflicts with method = 'prompt_tuning'" in text


def test_stage_overrides_merge_over_top_level_loop() -> None:
    cfg = load_train_config(
        {"loop": {"lr": 1e-3, "epochs": 2}, "stages": [{"name": "domain", "data": "ds-a", "loop": {"lr": 5e-4}},
                                                         {"name": "sft", "replay": {"data": "ds-g", "share": 0.2}}]}
    )
    (domain, domain_loop), (_sft, sft_loop) = cfg.resolved_stages()
    assert (domain_loop.lr, domain_loop.epochs) == (5e-4, 2)
    assert (sft_loop.lr, sft_loop.epochs) == (1e-3, 2)
    assert cfg.data_refs() == ["ds-a", MAIN_DATA, "ds-g"]


def test_stage_override_values_are_validated() -> None:
    assert "stages.0.loop.lr" in problems({"stages": [{"name": "s", "loop": {"lr": 0}}]})


def test_toml_file_with_train_table(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('[train]\nmethod = "dora"\n[train.loop]\nmax_steps = 7\n')
    cfg = load_train_config(path, base="model.gguf")
    assert (cfg.method, cfg.loop.max_steps, cfg.base) == ("dora", 7, "model.gguf")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("method = \n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_train_config(path)


def test_digest_is_stable_and_sensitive() -> None:
    assert TrainConfig().digest() == TrainConfig().digest()
    assert TrainConfig(seed=1).digest() != TrainConfig().digest()


def test_config_imports_without_torch() -> None:
    code = "import sys, assay.train; assay.train.load_train_config(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
