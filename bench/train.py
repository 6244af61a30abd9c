"""Training throughput: assay's loop against a plain transformers `Trainer` + peft, same data and settings.

    python bench/train.py                       # CPU: a small random Llama, 20 steps
    python bench/train.py --base model.gguf --steps 50 --batch-size 8 --seq-len 512   # a real model (GPU)

Every mode runs in its own subprocess (so peak memory is its own) on the same formatted examples
(assay's chat formatting, response-only labels), batch size, sequence length, LoRA shape, learning
rate, schedule and clipping. Tokens/s counts real (non-padding) tokens over the optimizer steps after
the first (warm-up excluded, model loading excluded). Modes: assay without packing (the like-for-like
comparison), assay with packing, and Trainer (dynamic padding per batch, as DataCollatorForSeq2Seq
does). `--repeat N` runs the modes round-robin N times and reports medians, which matters on a
shared machine where the load drifts between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("assay", "assay-packed", "trainer")
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "red", "green", "blue", "river", "mountain", "forest", "cloud", "stone"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def main() -> None:
    args = parse_args()
    if args.only:
        print(json.dumps(run_mode(args.only, args)))
        return
    work = Path(tempfile.mkdtemp(prefix="assay-bench-train-"))
    try:
        measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, work: Path) -> None:
    base = args.base or str(small_model(work / "base", hidden=args.hidden, layers=args.layers))
    rounds = [MODES[i % len(MODES):] + MODES[: i % len(MODES)] for i in range(args.repeat)]  # rotate: no mode always first
    runs = [run_child(mode, base, work, args) for order in rounds for mode in order]
    report([median_of([r for r in runs if r["mode"] == mode]) for mode in MODES], args, base)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median tokens/s (its other numbers are from the same run)."""
    ordered = sorted(runs, key=lambda r: r["tokens_per_s"])
    return ordered[len(ordered) // 2] | {"all_tokens_per_s": [round(r["tokens_per_s"]) for r in runs]}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", help="model folder or .gguf (default: a small random Llama built here)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--hidden", type=int, default=256, help="width of the built-in random model")
    p.add_argument("--layers", type=int, default=4, help="depth of the built-in random model")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--repeat", type=int, default=1, help="run every mode this many times, report medians")
    p.add_argument("--only", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    return p.parse_args()


def run_child(mode: str, base: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--only", mode, "--base", base, "--work", str(work)]
    for name in ("steps", "batch_size", "seq_len", "rows", "lr", "rank", "threads", "repeat"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: list[dict[str, Any]], args: argparse.Namespace, base: str) -> None:
    by_mode = {r["mode"]: r for r in results}
    print(f"base {base}, device {results[0]['device']}, {args.steps} steps, batch {args.batch_size}, "
          f"seq {args.seq_len}, LoRA r={args.rank}")
    print(f"{'mode':<14}{'tokens/s':>12}{'steps s':>10}{'tokens':>10}{'final loss':>12}{'peak MiB':>10}  runs (tokens/s)")
    for r in results:
        print(f"{r['mode']:<14}{r['tokens_per_s']:>12,.0f}{r['seconds']:>10.2f}{r['tokens']:>10}{r['final_loss']:>12.4f}"
              f"{r['peak_mib']:>10.0f}  {r['all_tokens_per_s']}")
    trainer = by_mode["trainer"]["tokens_per_s"]
    print(f"ratio assay/trainer: {by_mode['assay']['tokens_per_s'] / trainer:.2f} (no packing), "
          f"{by_mode['assay-packed']['tokens_per_s'] / trainer:.2f} (packing)")


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from assay.train import load_train_config

    cfg = load_train_config({
        "base": args.base, "seed": 0,
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.0},
        "loop": {"lr": args.lr, "max_steps": args.steps, "epochs": 100, "batch_size": args.batch_size,
                 "max_seq_len": args.seq_len, "warmup_ratio": 0.0, "eval_every": 0, "checkpoint_every": 0,
                 "packing": mode == "assay-packed"},
    })
    frame = rows(args.rows)
    result = run_assay(cfg, frame, Path(args.work), mode) if mode.startswith("assay") else run_trainer(cfg, frame, Path(args.work))
    cuda = torch.cuda.is_available()
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result | {"mode": mode, "device": torch.cuda.get_device_name() if cuda else "cpu", "peak_mib": peak}


def run_assay(cfg: Any, frame: Any, work: Path, mode: str) -> dict[str, Any]:
    from assay.train import train

    result = train(cfg, frame, work / f"run-{mode}-{os.getpid()}", cache_dir=work / "cache", progress=False)
    steps = [m for m in result.metrics if m["split"] == "train"]
    return steady([m["tokens"] for m in steps], [m["tokens"] / m["tokens_per_s"] for m in steps]) | {"final_loss": steps[-1]["loss"]}


def steady(tokens: list[int], seconds: list[float]) -> dict[str, Any]:
    """Throughput over the steps after the first (the first pays for lazy initialisation)."""
    tokens, seconds = (tokens[1:], seconds[1:]) if len(tokens) > 1 else (tokens, seconds)
    return {"tokens": sum(tokens), "seconds": sum(seconds), "tokens_per_s": sum(tokens) / sum(seconds)}


def run_trainer(cfg: Any, frame: Any, work: Path) -> dict[str, Any]:
    """The baseline: the same examples through transformers.Trainer with a peft LoRA model."""
    import torch
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from assay.train.formatting import format_rows
    from assay.train.methods import peft_config
    from assay.train.models import load_model, load_tokenizer, resolve_base

    base = resolve_base(cfg.base, cache_dir=work / "cache")
    tokenizer = load_tokenizer(base)
    examples, _ = format_rows(frame, tokenizer, max_seq_len=cfg.loop.max_seq_len)
    dataset = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
    cuda = torch.cuda.is_available()
    model = get_peft_model(load_model(base, dtype=torch.bfloat16 if cuda else torch.float32), peft_config(cfg, base_path=base.path))
    counter = _CountingCollator(DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    clock = _clock()
    args = TrainingArguments(
        output_dir=str(work / "trainer"), per_device_train_batch_size=cfg.loop.batch_size, learning_rate=cfg.loop.lr,
        max_steps=cfg.loop.max_steps, lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        logging_steps=1, save_strategy="no", report_to=[], bf16=cuda, use_cpu=not cuda, dataloader_num_workers=0,
        remove_unused_columns=False, disable_tqdm=True, seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=counter, callbacks=[clock])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    steps = len(clock.durations)
    return steady(counter.counts[:steps], clock.durations) | {"final_loss": losses[-1] if losses else float("nan")}


class _CountingCollator:
    """Counts the real tokens of each batch the Trainer feeds (padding excluded); one batch per step here."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.counts = inner, []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        self.counts.append(sum(len(f["input_ids"]) for f in features))
        return self.inner(features)


def _clock() -> Any:
    """A Trainer callback timing each optimizer step, as assay times its steps."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.durations: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self.start)

    return Clock()


def rows(n: int) -> Any:
    """Synthetic prompt/response rows of varied length (so padding and packing matter)."""
    import polars as pl

    rng = random.Random(0)
    data = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))
        response = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120)))
        data.append({"id": f"b{i}", "split": "train", "prompt": prompt, "response": response})
    return pl.DataFrame(data)


def small_model(folder: Path, *, hidden: int, layers: int) -> Path:
    """A random Llama with a BPE tokenizer trained here: nothing is downloaded."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator([" ".join(random.Random(i).choices(WORDS, k=30)) for i in range(2000)], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        chat_template=TEMPLATE)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                         num_attention_heads=max(hidden // 64, 1), num_key_value_heads=max(hidden // 128, 1),
                         max_position_embeddings=4096, eos_token_id=2, pad_token_id=0, bos_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    main()
