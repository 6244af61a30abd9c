"""Adapting a base model: LoRA, DoRA, prompt tuning or full fine-tuning, behind three small functions.

`adapt` wraps the model, `trainable_state` / `load_trainable_state` move exactly the trained
weights in and out of checkpoints, and `save_weights` writes the output folder in the format the
method implies (a peft adapter, or a full model for `full`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from assay.errors import ConfigError
from assay.train.config import TrainConfig


def adapt(model: Any, cfg: TrainConfig, *, base_path: Path) -> Any:
    """The model wrapped for `cfg.method`, with only the weights that method trains requiring grad."""
    if cfg.method == "full":
        return _full(model, cfg)
    from peft import get_peft_model

    with peft_wrapping():
        return get_peft_model(model, peft_config(cfg, base_path=base_path))


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around peft wrapping or loading a model: peft 0.21 reads transformers' deprecated
    `is_gradient_checkpointing`, a FutureWarning that is theirs, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def peft_config(cfg: TrainConfig, *, base_path: Path) -> Any:
    """The peft config for an adapter method (lora, dora or prompt_tuning)."""
    from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType

    if cfg.method in ("lora", "dora"):
        lora = cfg.lora
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            use_dora=cfg.method == "dora",
        )
    pt = cfg.prompt_tuning
    init = {"prompt_tuning_init": PromptTuningInit.RANDOM}
    if pt.init_text:
        init = {
            "prompt_tuning_init": PromptTuningInit.TEXT,
            "prompt_tuning_init_text": pt.init_text,
            "tokenizer_name_or_path": str(base_path),
        }
    return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=pt.num_virtual_tokens, **init)


def _full(model: Any, cfg: TrainConfig) -> Any:
    count = sum(p.numel() for p in model.parameters())
    if count > cfg.full.max_params:
        raise ConfigError(
            f"method = 'full' on a model with {count:,} parameters exceeds full.max_params = {cfg.full.max_params:,}",
            hint="use method = 'lora' (or raise full.max_params if the device has ~16 bytes per parameter free)",
        )
    for param in model.parameters():
        param.requires_grad_(True)
    return model


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """Every weight that requires grad, by name, detached and on CPU (what a checkpoint must keep)."""
    return {name: p.detach().to("cpu", copy=True).contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable weights back in; refuse a checkpoint that does not match the model."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        missing, extra = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        raise ConfigError(
            f"checkpoint does not match the model (missing {missing[:3]}, unexpected {extra[:3]})",
            hint="resume with the same base model and method, or start in a new run folder",
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state[name].to(param.device, param.dtype))


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def save_weights(model: Any, folder: Path, *, method: str) -> str:
    """Write the trained weights; returns the format: "peft-adapter" or "full".

    Training turned the KV cache off; a saved full model turns it back on for generation.
    """
    if method == "full":
        model.config.use_cache = True
    model.save_pretrained(folder, safe_serialization=True)
    return "full" if method == "full" else "peft-adapter"
