"""Training against a workspace: resolve dataset versions, refuse unreviewed data, register the model.

    model_id = run_training(ws, "ds-1a2b3c4d5e6f", "SmolLM2-135M-Instruct.Q4_1.gguf", ws.config.train)

This is the thin layer the CLI (`assay train run`) calls; the recipe itself knows only DataFrames.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, NotFoundError
from assay.store.atomic import write_bytes_atomic
from assay.train.config import MAIN_DATA, TrainConfig, load_train_config

APPROVED = "approved"
REQUEST = "request.json"


def run_training(
    ws: Any, data_ref: str, base: str | None = None, cfg: TrainConfig | None = None, *, name: str | None = None,
    progress: bool = True, extra_manifest: dict[str, Any] | None = None,
) -> str:
    """Train on workspace dataset versions and register the result; returns the model version id.

    Every version the run reads must be `approved` unless `cfg.allow_unreviewed` is set; that
    choice and the kinds of all versions are recorded in the model's manifest. A run killed
    midway resumes when the same command is run again (its folder is keyed by the resolved config).
    `name` tags the model version (moving the tag if it named another version). `cfg` defaults to the
    workspace's `[train]` settings; `base` overrides `cfg.base`. `extra_manifest` adds provenance (e.g.
    the batch, or why review was skipped) to the model's manifest.
    """
    cfg = cfg or ws.config.train
    versions = _resolve_versions(ws, data_ref, cfg)
    unreviewed = sorted({v.id for v in versions.values() if v.kind != APPROVED})
    if unreviewed and not cfg.allow_unreviewed:
        kinds = ", ".join(f"{vid} ({_by_id(versions)[vid].kind})" for vid in unreviewed)
        raise ConfigError(
            f"refusing to train on dataset versions that are not approved: {kinds}",
            hint="review them (`assay label push` / `assay label pull`), or set train.allow_unreviewed = true "
            "(--allow-unreviewed); the choice is recorded in the model's manifest",
        )
    resolved = _with_version_ids(cfg, versions, base)
    frames = {v.id: v.data().collect() for v in versions.values()}
    run_dir = ws.layout.runs / run_name(resolved)
    _write_request(run_dir, data_ref, base, cfg)
    train = _recipe().train

    result = train(resolved, frames, run_dir, cache_dir=ws.layout.model_cache, progress=progress)
    manifest = result.manifest | {
        "datasets": {v.id: {"kind": v.kind} for v in versions.values()},
        "unreviewed_datasets": unreviewed,
    } | {k: v for k, v in (extra_manifest or {}).items() if v is not None}
    model = ws.models.register(result.output_dir, manifest, parents=sorted(frames))
    if name:
        ws.models.tag(model.id, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    return model.id


def _recipe() -> Any:
    """The training stack, or an error naming the extra when torch/transformers/peft are missing."""
    from assay.errors import require

    for module in ("torch", "transformers", "peft", "accelerate"):
        require(module, "train")
    from assay.train import recipe

    return recipe


def run_name(cfg: TrainConfig) -> str:
    """A run folder per resolved config and base (as given), so rerunning the command resumes it."""
    return hashlib.sha256(f"{cfg.digest()}\0{cfg.base}".encode()).hexdigest()[:16]


def _write_request(run_dir: Path, data_ref: str, base: str | None, cfg: TrainConfig) -> None:
    """What `assay train resume RUN` needs to rerun the same command."""
    run_dir.mkdir(parents=True, exist_ok=True)
    request = {"data": data_ref, "base": base, "config": cfg.model_dump(mode="json", exclude_unset=True)}
    write_bytes_atomic(run_dir / REQUEST, json.dumps(request, indent=2).encode())


def resume_training(ws: Any, run: str, *, progress: bool = True) -> str:
    """Resume an interrupted run from its latest checkpoint (same as rerunning its command)."""
    path = ws.layout.runs / run / REQUEST
    if not path.is_file():
        known = sorted(p.name for p in ws.layout.runs.glob("*") if (p / REQUEST).is_file())
        raise NotFoundError(f"no interrupted training run `{run}` in {ws.layout.runs}",
                            hint=f"runs that can resume: {', '.join(known) or 'none'}")
    request = json.loads(path.read_text())
    return run_training(ws, request["data"], request["base"], load_train_config(request["config"]), progress=progress)


def _by_id(versions: dict[str, Any]) -> dict[str, Any]:
    return {v.id: v for v in versions.values()}


def _resolve_versions(ws: Any, data_ref: str, cfg: TrainConfig) -> dict[str, Any]:
    """Every reference the config reads (the --data version as "main") → its dataset version."""
    versions = {MAIN_DATA: ws.datasets.get(data_ref)}
    for ref in cfg.data_refs():
        if ref not in versions:
            versions[ref] = ws.datasets.get(ref)
    return versions


def _with_version_ids(cfg: TrainConfig, versions: dict[str, Any], base: str | None) -> TrainConfig:
    """The config with every data reference replaced by its version id, and the base filled in."""
    raw = cfg.model_dump(mode="json", exclude_unset=True)
    stages = raw.get("stages") or [{"name": "train"}]
    for stage in stages:
        stage["data"] = versions[stage.get("data") or MAIN_DATA].id
        if stage.get("replay"):
            stage["replay"]["data"] = versions[stage["replay"]["data"]].id
    raw["stages"] = stages
    if base:
        raw["base"] = str(base)
    return TrainConfig.model_validate(raw)
