"""The model folder a run produces, and the manifest that says exactly what went into it.

    output/
      adapter_config.json, adapter_model.safetensors   (peft; `full` writes config.json + model.safetensors)
      tokenizer.json, tokenizer_config.json, chat_template.jinja, ...
      train_config.json     the resolved TrainConfig
      metrics.jsonl         train and val losses per step
      training.json         the manifest (also returned, for the catalog's manifest.json)
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any

from assay.train import methods
from assay.train.config import TrainConfig
from assay.train.models import BaseModelRef

CONFIG_FILE, METRICS_FILE, MANIFEST_FILE = "train_config.json", "metrics.jsonl", "training.json"
LIBRARIES = ("assay", "torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "gguf", "polars")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def build_manifest(
    cfg: TrainConfig,
    base: BaseModelRef,
    *,
    stages: list[dict[str, Any]],
    state: dict[str, Any],
    model: Any,
    device: str,
    processes: int,
) -> dict[str, Any]:
    """Base (with hash), every stage with its data and mix, counts, losses, seed and versions."""
    trainable, total = methods.count_params(model)
    last = stages[-1]
    seconds = state["train_seconds"]
    return {
        "format": "full" if cfg.method == "full" else "peft-adapter",
        "method": cfg.method,
        "base": base.manifest(),
        "data": cfg.data_refs(),
        "stages": stages,
        "counts": _counts(stages, state),
        "losses": {
            "final_train": last.get("final_train_loss"),
            "final_val": last.get("final_val_loss"),
            "best_val": last.get("best_val_loss"),
        },
        "params": {"trainable": trainable, "total": total},
        "seed": cfg.seed,
        "allow_unreviewed": cfg.allow_unreviewed,
        "config": cfg.model_dump(mode="json"),
        "config_hash": cfg.digest(),
        "libraries": library_versions(),
        "runtime": {
            "device": device,
            "processes": processes,
            "train_seconds": round(seconds, 3),
            "tokens_per_s": round(state["tokens"] / seconds, 1) if seconds else None,
        },
    }


def _counts(stages: list[dict[str, Any]], state: dict[str, Any]) -> dict[str, Any]:
    train = [s["train"] for s in stages]
    replay = [s["replay"]["format"] for s in stages if s.get("replay")]
    return {
        "train_rows_used": sum(t["used"] for t in train),
        "replay_rows_used": sum(r["used"] for r in replay),
        "truncated_rows": sum(t["truncated"] for t in train + replay),
        "dropped_rows": sum(sum(t["dropped"].values()) for t in train + replay),
        "optimizer_steps": state["global_step"],
        "tokens_seen": state["tokens"],
    }


def _portable_adapter_config(path: Path, base: BaseModelRef) -> None:
    """Make `adapter_config.json` identical wherever the run happened.

    peft writes the absolute path of the base it was given (`base_model_name_or_path`, and
    `tokenizer_name_or_path` for prompt tuning initialised from text); those become the base's portable
    name, so a moved workspace still loads and the same run gives the same model version id anywhere.
    peft writes `target_modules` from a set, so its order changes with the hash seed: sort it.
    """
    if not path.is_file():
        return
    config = json.loads(path.read_text())
    for key in ("base_model_name_or_path", "tokenizer_name_or_path"):
        if config.get(key):
            config[key] = base.name
    for key, value in config.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            config[key] = sorted(value)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_output(
    folder: Path, *, model: Any, tokenizer: Any, cfg: TrainConfig, base: BaseModelRef, manifest: dict[str, Any], metrics: Path
) -> None:
    """Write the model folder from scratch (a resumed run rewrites it whole); no file holds a local path."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    methods.save_weights(model, folder, method=cfg.method)
    _portable_adapter_config(folder / "adapter_config.json", base)
    if cfg.method == "full":
        _portable_full_config(folder / "config.json", base)
    tokenizer.save_pretrained(folder)
    resolved = cfg.model_dump(mode="json") | {"base": base.name}
    (folder / CONFIG_FILE).write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    if metrics.is_file():
        shutil.copyfile(metrics, folder / METRICS_FILE)


def _portable_full_config(path: Path, base: BaseModelRef) -> None:
    """A full model's config.json may carry `_name_or_path` (the base's folder): make it the portable name."""
    config = json.loads(path.read_text())
    if "_name_or_path" in config:
        config["_name_or_path"] = base.name
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
