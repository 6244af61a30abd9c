"""The demo's batch, suite and policy files: ordinary assay files a user can read, copy and change.

CPU-sized: one epoch of LoRA on ~120 short rows, a cheaper alternative (prompt tuning: 16 learned
virtual tokens, no change to the model's weights), and a suite that scores samples of the shipped
probe sets so that evaluating two candidates against the base fits in a few minutes on two cores.
`quick` shrinks everything further for smoke tests on tiny models.
"""

from __future__ import annotations

import json
from pathlib import Path

from assay.store.atomic import write_bytes_atomic

BATCH = """# The demo batch: written by `assay demo`; run it yourself with `assay batch run {path}`.
[batch]
name = "demo"
inputs = ["raw/orders.jsonl"]
base = {base}

[review]
mode = "argilla"
dataset = "demo-orders"
complete = 0.85  # go on once 85 % of the records have both reviews (the simulated reviewers leave a few for you)

[[candidates]]
name = "lora"
train = {{ method = "lora", lora = {{ r = 8, alpha = 16.0, dropout = 0.0 }} }}

[[candidates]]
name = "prompt-tuning"
train = {{ method = "prompt_tuning", prompt_tuning = {{ num_virtual_tokens = 16, init_text = "Reply with one line of JSON." }}, loop = {{ packing = false, lr = 0.03 }} }}

[promote]
auto = true
alias = "production"

[curate.decontaminate]
evals = ["raw/held_out.jsonl"]

[curate.split]
ratios = {{ train = 0.92, val = 0.08 }}

[label]
min_submitted = 2

[train.loop]
epochs = 1
lr = 0.001
batch_size = 4
max_seq_len = 192
eval_every = {eval_every}
checkpoint_every = {eval_every}
warmup_ratio = 0.05
{max_steps}
[eval]
suite = "suite.toml"
policy = "policy.toml"
baseline = "base"
resamples = 1000
"""

SUITE = """# The demo's evaluation suite: the task on held-out orders, and samples of assay's probe sets.
[checks.task]
files = ["raw/held_out.jsonl"]
max_examples = {task}
max_new_tokens = 48
metrics = ["exact_match", "token_f1", "rougeL", "bleu"]
samples = 8

[checks.overfitting]
max_rows = {small}

[checks.memorisation]
rows = {small}
prefix_tokens = 12
continuation_tokens = 16

[checks.forgetting]
max_items = {probes}

[checks.bias]
max_items = {probes}

[checks.contamination]
"""

POLICY = """# The demo's gate: the documented defaults (`assay eval policy`), with token F1 as the primary metric.
[gate]
primary = "task.token_f1"
"""


def write_files(folder: Path, base: str, *, quick: bool = False) -> Path:
    """batch.toml, suite.toml and policy.toml in `folder`; returns the batch file."""
    folder.mkdir(parents=True, exist_ok=True)
    batch = folder / "batch.toml"
    batch_text = BATCH.format(path=batch, base=json.dumps(base), eval_every=4 if quick else 10, max_steps="max_steps = 4\n" if quick else "")
    suite = SUITE.format(task=8 if quick else 40, small=6 if quick else 20, probes=6 if quick else 24)
    for path, text in ((batch, batch_text), (folder / "suite.toml", suite), (folder / "policy.toml", POLICY)):
        write_bytes_atomic(path, text.encode())
    return batch
