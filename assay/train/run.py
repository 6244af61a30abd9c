"""Training against a workspace: resolve dataset versions, refuse unreviewed data, register the model.

    model_id = run_training(ws, "ds-1a2b3c4d5e6f", "SmolLM2-135M-Instruct.Q4_1.gguf", load_train_config())

This is the thin layer the CLI (`assay train run`) calls; the recipe itself knows only DataFrames.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.train.config import MAIN_DATA, TrainConfig

APPROVED = "approved"


def run_training(ws: Any, data_ref: str, base: str | None, cfg: TrainConfig, *, progress: bool = True) -> str:
    """Train on workspace dataset versions and register the result; returns the model version id.

    Every version the run reads must be `approved` unless `cfg.allow_unreviewed` is set; that
    choice and the kinds of all versions are recorded in the model's manifest. A run killed
    midway resumes when the same command is run again (its folder is keyed by the resolved config).
    """
    versions = _resolve_versions(ws, data_ref, cfg)
    unreviewed = sorted({v.id for v in versions.values() if v.kind != APPROVED})
    if unreviewed and not cfg.allow_unreviewed:
        kinds = ", ".join(f"{vid} ({versions_by_id(versions)[vid].kind})" for vid in unreviewed)
        raise ConfigError(
            f"refusing to train on dataset versions that are not approved: {kinds}",
            hint="review them (`assay label push` / `assay label pull`), or set allow_unreviewed = true "
            "(--allow-unreviewed); the choice is recorded in the model's manifest",
        )
    resolved = _with_version_ids(cfg, versions, base)
    frames = {v.id: v.data().collect() for v in versions.values()}
    run_dir = Path(ws.root) / "runs" / resolved.digest()[:16]
    _write_request(run_dir, data_ref, base, cfg)
    from assay.train.recipe import train

    result = train(resolved, frames, run_dir, cache_dir=Path(ws.root) / "cache" / "models", progress=progress)
    manifest = result.manifest | {
        "datasets": {v.id: {"kind": v.kind} for v in versions.values()},
        "unreviewed_datasets": unreviewed,
    }
    model = ws.models.register(result.output_dir, manifest, parents=sorted(frames))
    shutil.rmtree(run_dir, ignore_errors=True)
    return model.id


REQUEST = "request.json"


def _write_request(run_dir: Path, data_ref: str, base: str | None, cfg: TrainConfig) -> None:
    """What `assay train resume RUN` needs to rerun the same command."""
    import json

    run_dir.mkdir(parents=True, exist_ok=True)
    request = {"data": data_ref, "base": base, "config": cfg.model_dump(mode="json", exclude_unset=True)}
    (run_dir / REQUEST).write_text(json.dumps(request, indent=2))


def resume_training(ws: Any, run: str, *, progress: bool = True) -> str:
    """Resume an interrupted run from its latest checkpoint (same as rerunning its command)."""
    import json

    from assay.errors import NotFoundError
    from assay.train.config import load_train_config

    path = Path(ws.root) / "runs" / run / REQUEST
    if not path.is_file():
        known = sorted(p.name for p in (Path(ws.root) / "runs").glob("*") if (p / REQUEST).is_file())
        raise NotFoundError(f"no interrupted training run `{run}` in {Path(ws.root) / 'runs'}",
                            hint=f"runs that can resume: {', '.join(known) or 'none'}")
    request = json.loads(path.read_text())
    return run_training(ws, request["data"], request["base"], load_train_config(request["config"]), progress=progress)


def versions_by_id(versions: dict[str, Any]) -> dict[str, Any]:
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
