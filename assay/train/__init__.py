"""Training (DESIGN §7): offline base models, chat formatting with response-only loss, packing,
a readable accelerate loop with exact resume, and LoRA/DoRA/prompt-tuning/full methods.

    from assay.train import load_train_config, train
    result = train(load_train_config({"base": "model.gguf"}), frame, Path("runs/r1"))

The config imports without torch; everything else loads torch on first use.
"""

from __future__ import annotations

from typing import Any

from assay.train.config import MAIN_DATA, LoopSettings, StageConfig, TrainConfig, load_train_config

_LAZY = {
    "train": "assay.train.recipe",
    "TrainResult": "assay.train.recipe",
    "StepInfo": "assay.train.recipe",
    "resolve_base": "assay.train.models",
    "BaseModelRef": "assay.train.models",
    "demo_gguf": "assay.train.models",
    "run_training": "assay.train.run",
}

__all__ = ["MAIN_DATA", "LoopSettings", "StageConfig", "TrainConfig", "load_train_config", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assay.train' has no attribute {name!r}")
