"""A stage's data, ready to train: formatted, mixed with replay, packed, and counted.

Everything here happens before any weights load, so a data problem surfaces in seconds and names
the stage and dataset it comes from.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from assay.errors import InputError
from assay.train import batching
from assay.train.batching import Row
from assay.train.config import MAIN_DATA, LoopSettings, StageConfig, TrainConfig
from assay.train.formatting import Example, FormatStats, format_rows, split_rows
from assay.train.models import BaseModelRef


@dataclass(frozen=True)
class Stage:
    """A stage's rows, ready to train: packed (or single-example) sequences and their bookkeeping."""

    index: int
    config: StageConfig
    loop: LoopSettings
    rows: list[Row]
    val_rows: list[Row]
    stats: dict[str, Any]
    total_steps: int


def check_refs(cfg: TrainConfig, data: Mapping[str, pl.DataFrame]) -> None:
    """Every dataset reference the config reads must be given."""
    missing = [ref for ref in cfg.data_refs() if ref not in data]
    if missing:
        raise InputError(
            f"no data given for {missing} (the config reads {cfg.data_refs()}; given: {sorted(data)})",
            hint="pass every dataset version the stages name; a stage without `data` reads the --data version",
        )


def prepare_stages(cfg: TrainConfig, data: Mapping[str, pl.DataFrame], tokenizer: Any, *, world: int) -> list[Stage]:
    """Every stage of the config, formatted and packed for `world` processes."""
    return [prepare_stage(cfg, i, stage, loop, data, tokenizer, world)
            for i, (stage, loop) in enumerate(cfg.resolved_stages())]


def prepare_stage(
    cfg: TrainConfig, index: int, stage: StageConfig, loop: LoopSettings, data: Mapping[str, pl.DataFrame], tokenizer: Any, world: int
) -> Stage:
    """Format a stage's train (+ replay) and val rows and pack them; errors name the stage and data."""
    ref = stage.data or MAIN_DATA
    what = f"stage {stage.name!r} (data {ref!r})"
    frame = data[ref]
    examples, stats = format_rows(split_rows(frame, "train", what=what), tokenizer, max_seq_len=loop.max_seq_len)
    _require_usable(examples, stats, what)
    replay, replay_stats = _replay_examples(cfg, index, stage, data, tokenizer, loop, len(examples))
    val, val_stats = format_rows(split_rows(frame, "val", what=what).head(loop.val_max_rows), tokenizer, max_seq_len=loop.max_seq_len)
    rows, val_rows = _sequences(examples + replay, loop, cfg.seed * 1000 + index), _sequences(val, loop, cfg.seed * 1000 + index)
    per_epoch = batching.steps_per_epoch(len(rows), batch_size=loop.batch_size, grad_accum=loop.grad_accum, world=world)
    if per_epoch == 0:
        raise InputError(f"{what}: {len(rows)} sequences cannot give each of {world} processes a micro-batch", hint="use fewer processes or more data")
    total = int(min(loop.max_steps or math.inf, loop.epochs * per_epoch))
    info = {
        "name": stage.name, "data": ref, "train": stats.as_dict(), "val": val_stats.as_dict(), "replay": replay_stats,
        "sequences": len(rows), "val_sequences": len(val_rows), "steps_per_epoch": per_epoch, "planned_steps": total,
        "loop": loop.model_dump(mode="json"),
    }
    return Stage(index, stage, loop, rows, val_rows, info, total)


def _sequences(examples: list[Example], loop: LoopSettings, seed: int) -> list[Row]:
    """Packed sequences in a seeded order, or one example per sequence."""
    return batching.pack(examples, max_len=loop.max_seq_len, seed=seed) if loop.packing else batching.unpacked(examples)


def _require_usable(examples: list[Example], stats: FormatStats, what: str) -> None:
    if not examples:
        raise InputError(
            f"{what}: none of its {stats.rows} train rows is usable (dropped: {dict(stats.dropped) or 'none'})",
            hint="check the content columns; chat rows need a non-empty assistant turn inside max_seq_len",
        )


def _replay_examples(
    cfg: TrainConfig, index: int, stage: StageConfig, data: Mapping[str, pl.DataFrame], tokenizer: Any, loop: LoopSettings, n_stage: int
) -> tuple[list[Example], dict[str, Any] | None]:
    """A seeded sample of the replay version's train rows, sized so it makes up `share` of the stage."""
    if stage.replay is None:
        return [], None
    replay = stage.replay
    frame = split_rows(data[replay.data], "train", what=f"replay data {replay.data!r} of stage {stage.name!r}")
    wanted = round(replay.share / (1 - replay.share) * n_stage)
    rng = np.random.default_rng([cfg.seed, index, 104729])
    with_replacement = wanted > frame.height
    picks = rng.choice(frame.height, size=wanted, replace=with_replacement) if wanted else np.array([], dtype=int)
    examples, stats = format_rows(frame[picks.tolist()], tokenizer, max_seq_len=loop.max_seq_len)
    actual = len(examples) / max(len(examples) + n_stage, 1)
    info = {"data": replay.data, "share": replay.share, "actual_share": round(actual, 4), "rows_wanted": wanted,
            "sampled_with_replacement": with_replacement, "available_rows": frame.height, "format": stats.as_dict()}
    return examples, info


def fingerprint(cfg: TrainConfig, base: BaseModelRef, data: Mapping[str, pl.DataFrame], processes: int) -> str:
    """What a resumed run must share with the killed one: config, base weights, exact rows, process count."""
    h = hashlib.sha256(f"{cfg.digest()}\0{base.sha256}\0{processes}".encode())
    for ref in cfg.data_refs():
        frame = data[ref]
        h.update(f"\0{ref}\0{frame.height}\0{frame.columns}\0{int(frame.hash_rows(seed=0).sum())}".encode())
    return h.hexdigest()
