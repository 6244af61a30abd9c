"""Resumable checkpoints, written so that a crash at any moment leaves the previous one usable.

A checkpoint is a folder `checkpoints/step-<global step>` with the trainable weights, the best
weights so far, optimizer and scheduler state, RNG states (python, numpy, torch, cuda) and a small
`state.json` (stage, epoch, step, counters). It is written through `assay.store.atomic`: into a
staging folder, fsynced and renamed into place; only then is the `checkpoints/latest` pointer
replaced (itself written atomically). A failure while writing (disk full, a kill) therefore leaves `latest` naming the
previous complete checkpoint, and the staging folder is removed.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from assay.errors import AssayError, ConfigError
from assay.store.atomic import STAGING_PREFIX, publish_dir, staging_dir, write_bytes_atomic

CHECKPOINTS, LATEST = "checkpoints", "latest"
WEIGHTS, BEST, OPTIMIZER, SCHEDULER, RNG, STATE = (
    "trainable.safetensors",
    "best.safetensors",
    "optimizer.pt",
    "scheduler.pt",
    "rng.pt",
    "state.json",
)


class CheckpointError(AssayError):
    """A checkpoint could not be written or read; the previous checkpoint is still the latest."""


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint on disk."""

    path: Path
    state: dict[str, Any]

    def weights(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / WEIGHTS)

    def best_weights(self) -> dict[str, torch.Tensor] | None:
        return load_file(self.path / BEST) if (self.path / BEST).is_file() else None

    def optimizer_state(self) -> dict[str, Any] | None:
        return _load_torch(self.path / OPTIMIZER)

    def scheduler_state(self) -> dict[str, Any] | None:
        return _load_torch(self.path / SCHEDULER)

    def rng_state(self, rank: int = 0) -> dict[str, Any]:
        """This process's RNG states (one entry per process was saved)."""
        states = torch.load(self.path / RNG, weights_only=False)
        return states[min(rank, len(states) - 1)]


def _load_torch(path: Path) -> Any:
    return torch.load(path, weights_only=False) if path.is_file() else None


def rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from, so a resumed run draws the same numbers."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    *,
    step: int,
    state: dict[str, Any],
    weights: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any] | None,
    scheduler: dict[str, Any] | None,
    rng: list[dict[str, Any]],
    keep: int,
    suffix: str = "",
) -> Path:
    """Write a checkpoint atomically, point `latest` at it, then prune old ones. Returns its folder.

    `suffix` names a stage-end checkpoint apart from a periodic one taken at the same step, so the
    folder `latest` names is never replaced in place.
    """
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}{suffix}"
    previous = latest_name(run_dir)
    if name == previous:
        raise CheckpointError(f"checkpoint {root / name} already exists and is the latest", hint="start a new run folder")
    try:
        with staging_dir(root) as staging:
            _write_files(staging, state, weights, best, optimizer, scheduler, rng)
            if (root / name).exists():  # a leftover of a run killed before it moved `latest` (never the latest itself)
                shutil.rmtree(root / name)
            publish_dir(staging, root / name)
        write_bytes_atomic(root / LATEST, (name + "\n").encode())
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {root / name}: {exc.strerror or exc}",
            hint=f"free disk space in {root}; the last complete checkpoint ({previous or 'none'}) is kept and the run "
            "resumes from it when started again",
        ) from exc
    _prune(root, keep=keep, current=name)
    return root / name


def _write_files(
    folder: Path,
    state: dict[str, Any],
    weights: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: dict[str, Any] | None,
    scheduler: dict[str, Any] | None,
    rng: list[dict[str, Any]],
) -> None:
    save_file(weights, folder / WEIGHTS)
    if best is not None:
        save_file(best, folder / BEST)
    if optimizer is not None:
        torch.save(optimizer, folder / OPTIMIZER)
    if scheduler is not None:
        torch.save(scheduler, folder / SCHEDULER)
    torch.save(rng, folder / RNG)
    (folder / STATE).write_text(json.dumps(state, indent=1, sort_keys=True))


def _prune(root: Path, *, keep: int, current: str) -> None:
    """Delete all but the newest `keep` complete checkpoints (never the current one)."""
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and (p / STATE).is_file())
    for old in done[:-keep]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)


def clean_staging(run_dir: Path) -> list[Path]:
    """Remove what a killed writer left half-written (one run owns a run folder at a time)."""
    root = run_dir / CHECKPOINTS
    leftovers = list(root.glob(f"{STAGING_PREFIX}*")) if root.is_dir() else []
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return leftovers


def latest_name(run_dir: Path) -> str | None:
    pointer = run_dir / CHECKPOINTS / LATEST
    return pointer.read_text().strip() if pointer.is_file() else None


def load_latest(run_dir: Path) -> Checkpoint | None:
    """The checkpoint `latest` names, or None for a fresh run."""
    name = latest_name(run_dir)
    if name is None:
        return None
    folder = run_dir / CHECKPOINTS / name
    try:
        state = json.loads((folder / STATE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {folder} named by {run_dir / CHECKPOINTS / LATEST} is unreadable: {exc}",
            hint=f"delete {run_dir} to start over",
        ) from exc
    return Checkpoint(folder, state)


def resume_point(run_dir: Path, fingerprint: str) -> Checkpoint | None:
    """The latest checkpoint of this run folder, refused when it belongs to a different run."""
    found = load_latest(run_dir)
    if found is not None and found.state.get("fingerprint") != fingerprint:
        raise ConfigError(
            f"{run_dir} holds a checkpoint of a different run (config, base model, data or number of processes differ)",
            hint="use a new run folder, or delete this one to start over",
        )
    return found
