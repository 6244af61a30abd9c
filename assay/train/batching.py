"""Sequences, the order they are seen in, and the tensors a step feeds the model.

Packing concatenates several examples into one sequence. Examples must not see each other: positions
restart at 0 for each example and the batch carries `position_ids` with no `attention_mask`, from
which transformers (>= 4.53, and 5.x) derives a block-diagonal causal mask for sdpa/eager attention
and varlen boundaries for flash-attention. Padding at the end of a packed row is its own block with
restarted positions and no loss. Unpacked batches are right-padded and carry an `attention_mask`.

The data order is a pure function of (seed, stage, epoch), so a resumed run needs only the step
number to continue exactly where the killed one stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from assay.train.formatting import IGNORE, Example

Row = tuple[Example, ...]
"""One sequence fed to the model: a single example, or several packed ones."""


def pack(examples: Sequence[Example], *, max_len: int, seed: int) -> list[Row]:
    """Greedy packing in a seeded random order (not by length, so batches do not correlate with length)."""
    order = np.random.default_rng([seed, 7919]).permutation(len(examples))
    rows: list[Row] = []
    current: list[Example] = []
    used = 0
    for index in order:
        example = examples[int(index)]
        if current and used + len(example.input_ids) > max_len:
            rows.append(tuple(current))
            current, used = [], 0
        current.append(example)
        used += len(example.input_ids)
    if current:
        rows.append(tuple(current))
    return rows


def unpacked(examples: Sequence[Example]) -> list[Row]:
    return [(example,) for example in examples]


def collate(rows: Sequence[Row], *, packed: bool, pad_id: int) -> dict[str, torch.Tensor]:
    """Tensors for one micro-batch, padded on the right to its longest row."""
    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        start = 0
        for example in row:
            end = start + len(example.input_ids)
            ids[i, start:end] = torch.tensor(example.input_ids)
            labels[i, start:end] = torch.tensor(example.labels)
            positions[i, start:end] = torch.arange(end - start)
            start = end
        mask[i, :start] = 1
        positions[i, start:] = torch.arange(width - start)
    batch = {"input_ids": ids, "labels": labels}
    return batch | ({"position_ids": positions} if packed else {"attention_mask": mask})


def real_tokens(rows: Sequence[Row]) -> int:
    return sum(len(e.input_ids) for row in rows for e in row)


def target_tokens(rows: Sequence[Row]) -> int:
    return sum(e.target_tokens for row in rows for e in row)


def epoch_plan(
    n_rows: int, *, batch_size: int, grad_accum: int, world: int, seed: int, stage: int, epoch: int
) -> list[list[list[int]]]:
    """Optimizer steps of one epoch; each a list of micro-batches (all processes); each a list of row indices.

    Process `rank` takes micro-batches `step[rank::world]`. With several processes, trailing
    micro-batches that cannot give every process one are left out so no process waits forever.
    """
    order = np.random.default_rng([seed, stage, epoch]).permutation(n_rows).tolist()
    micro = [order[i : i + batch_size] for i in range(0, n_rows, batch_size)]
    if world > 1:
        micro = micro[: len(micro) - len(micro) % world]
    per_step = grad_accum * world
    return [micro[i : i + per_step] for i in range(0, len(micro), per_step)]


def steps_per_epoch(n_rows: int, *, batch_size: int, grad_accum: int, world: int) -> int:
    micro = math.ceil(n_rows / batch_size)
    if world > 1:
        micro -= micro % world
    return math.ceil(micro / (grad_accum * world))
