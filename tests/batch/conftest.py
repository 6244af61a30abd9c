"""A tiny local base model and a small pair task for batch tests (seconds on a CPU)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.train.helpers import WORDS, build_model, build_tokenizer


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch-base")
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "assay-cache"))


def write_pairs(path: Path, n: int = 90, seed: int = 0) -> Path:
    """`say A B and C` → `A B C` rows (distinct, long enough for the quality filters)."""
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < n:
        a, b, c = (rng.choice(WORDS) for _ in range(3))
        prompt = f"say {a} {b} and then {c} please, in that order"
        if prompt not in seen:
            seen.add(prompt)
            rows.append({"prompt": prompt, "response": f"{a} {b} {c}"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


LOOP = ('loop = { max_steps = 6, lr = 0.005, batch_size = 4, max_seq_len = 64, eval_every = 3, checkpoint_every = 2, '
        'warmup_ratio = 0.0, precision = "fp32" }')


def batch_file(folder: Path, base: Path, *, review: str = 'mode = "skip"\nreason = "synthetic test rows"', extra: str = "",
               candidates: str = "") -> Path:
    write_pairs(folder / "data" / "pairs.jsonl")
    (folder / "suite.toml").write_text("[checks.task]\nmax_examples = 8\nmax_new_tokens = 8\n[checks.contamination]\n")
    (folder / "policy.toml").write_text('[gate]\nprimary = "task.token_f1"\n[task]\nmin_relative_gain = -10.0\nmin_absolute_gain = -1.0\n')
    cands = candidates or (f'[[candidates]]\nname = "lora"\ntrain = {{ lora = {{ r = 4, alpha = 8.0 }}, {LOOP} }}\n\n'
                           f'[[candidates]]\nname = "dora"\ntrain = {{ method = "dora", lora = {{ r = 4, alpha = 8.0 }}, {LOOP} }}\n')
    path = folder / "batch.toml"
    path.write_text(f'[batch]\nname = "t"\ninputs = ["data/pairs.jsonl"]\nbase = "{base}"\n\n[review]\n{review}\n\n{cands}\n'
                    '[promote]\nauto = true\n\n[curate]\nsteps = ["normalize", "exact_dedup", "split"]\n\n'
                    '[curate.split]\nratios = { train = 0.8, val = 0.1, test = 0.1 }\n\n'
                    f'[eval]\nsuite = "suite.toml"\npolicy = "policy.toml"\nresamples = 200\n{extra}')
    return path
