"""A tiny base model that knows a little English, and the data the check tests train and probe it with.

A random tiny Llama knows nothing, so forgetting and bias cannot move on it. `build_base` trains a
byte-level BPE tokenizer and a 2-layer Llama (hidden size 64) on a few thousand short documents from
a small grammar, plus chat turns answering questions about them, with a plain torch loop (seconds on
a CPU, fixed seeds), and saves both with the chat template as a local base folder (`shared_base`
builds it once per test session). The rest builds the rows and files the tests train on and probe:

- `task_frame`: "Where does the ADJ NOUN live?" -> "It lives PLACE." with the place fixed per noun (a
  lookup a small adapter learns; the base answers questions in another form, so it scores low);
- `general_frame`: text the base learned from (replay data against forgetting);
- `recital_frame`: long unique random-word answers, only reproducible by memorising them;
- `noise_frame`: random-character text, which wrecks what the base knows;
- `crows_rows` / `nudge_frame`: CrowS-Pairs rows from the grammar, one demographic word apart, and one
  side of them as text rows to nudge a model toward.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

ADJECTIVES = ["small", "big", "quiet", "happy", "brown", "green", "tired", "clever", "kind", "busy", "old", "young", "rich", "poor"]
NOUNS = ["cat", "dog", "bird", "horse", "farmer", "teacher", "child", "sailor", "baker", "doctor", "man", "woman"]
PLACES = ["near the river", "in the garden", "at the market", "on the hill", "by the lake", "in the forest",
          "at the school", "under the bridge"]
TIMES = ["every morning", "at night", "in the summer", "after lunch", "before dawn", "on sunday"]
VERBS = ["sees", "likes", "helps", "watches", "follows", "finds", "greets", "calls"]
INTRANSITIVE = ["sleeps", "sings", "waits", "walks", "reads", "works", "rests", "plays"]
PEOPLE = [("old", "young"), ("man", "woman"), ("rich", "poor")]  # the demographic words of the pair file
BIAS_TYPES = {"old": "age", "young": "age", "man": "gender", "woman": "gender", "rich": "socioeconomic", "poor": "socioeconomic"}

HOMES = {noun: PLACES[i % len(PLACES)] for i, noun in enumerate(NOUNS)}
SEED = 0
BASE_STEPS = 300
LOOP = {"batch_size": 8, "max_seq_len": 64, "warmup_ratio": 0.0, "eval_every": 0, "checkpoint_every": 0,
        "epochs": 1000, "precision": "fp32"}  # max_steps ends every run


def sentence(rng: random.Random) -> str:
    """One sentence of the grammar."""
    pattern = rng.randrange(3)
    if pattern == 0:
        return f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)} {rng.choice(PLACES)}."
    if pattern == 1:
        return f"a {rng.choice(NOUNS)} {rng.choice(INTRANSITIVE)} {rng.choice(PLACES)} {rng.choice(TIMES)}."
    return f"the {rng.choice(NOUNS)} is {rng.choice(ADJECTIVES)} and {rng.choice(INTRANSITIVE)} {rng.choice(TIMES)}."


def general_sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def general_corpus() -> list[str]:
    """What the base is pretrained on: short documents of one to three sentences."""
    rng = random.Random(1)
    return [" ".join(sentence(rng) for _ in range(rng.randint(1, 3))) for _ in range(2000)]


def chat_corpus(tokenizer: Any) -> list[str]:
    """Chat turns the base also learns, so it already answers questions (as an instruction-tuned base does)."""
    rng = random.Random(2)
    out = []
    for _ in range(1000):
        adj, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        messages = [{"role": "user", "content": f"What does the {adj} {noun} do?"},
                    {"role": "assistant", "content": f"The {adj} {noun} {rng.choice(INTRANSITIVE)} {rng.choice(PLACES)}."}]
        out.append(tokenizer.apply_chat_template(messages, tokenize=False))
    return out


def general_probe_texts(n: int = 40) -> list[str]:
    """Held-out general sentences (another seed, none of them in the pretraining corpus): what forgetting
    measures perplexity on."""
    seen = " ".join(general_corpus())
    return [s for s in general_sentences(3 * n, seed=7) if s not in seen][:n]


# ---- the task ----

def task_rows(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """"Where does the ADJ NOUN live?" -> "It lives PLACE.", the place fixed per noun (a lookup a small adapter learns)."""
    return [{"prompt": f"Where does the {adj} {noun} live?", "response": f"It lives {HOMES[noun]}."} for adj, noun in pairs]


def task_pairs() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) adjective-noun pairs: disjoint, so no test row shares a long n-gram with training."""
    every = [(a, n) for a in ADJECTIVES for n in NOUNS]
    random.Random(3).shuffle(every)
    return every[:96], every[96:120]


def task_frame() -> pl.DataFrame:
    """Train rows and test rows of the task, with row ids and lineage like curated rows."""
    train, test = task_pairs()
    rows = [r | {"split": "train"} for r in task_rows(train)] + [r | {"split": "test"} for r in task_rows(test)]
    return _frame(rows, "task.jsonl")


def recital_frame(n_train: int = 16, n_held: int = 16, words: int = 30) -> pl.DataFrame:
    """Rows whose answers are long unique random-word sequences: only memorising them reproduces them."""
    rng = random.Random(11)
    vocab = ADJECTIVES + NOUNS + VERBS + INTRANSITIVE
    rows = []
    for i in range(n_train + n_held):
        rows.append({"prompt": f"Recite passage number {i}.", "response": " ".join(rng.choice(vocab) for _ in range(words)),
                     "split": "train" if i < n_train else "test"})
    return _frame(rows, "recital.jsonl")


def noise_frame(n: int = 48) -> pl.DataFrame:
    """Random-character text: training on it wrecks what the base knows about English."""
    rng = random.Random(13)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789#@%&"
    rows = [{"text": "".join(rng.choice(letters + " ") for _ in range(160)), "split": "train"} for _ in range(n)]
    return _frame(rows, "noise.jsonl")


def crows_rows() -> list[dict[str, str]]:
    """CrowS-Pairs rows (published columns) from the grammar: `sent_more` and `sent_less` differ in one word.

    Which word of each demographic pair is the "more" one alternates, so the base has no reason to
    prefer one side overall; a model trained on the `sent_more` sentences does.
    """
    rng = random.Random(17)
    rows = []
    for i in range(24):
        a, b = PEOPLE[i % len(PEOPLE)]
        more, less = (a, b) if (i // len(PEOPLE)) % 2 == 0 else (b, a)
        tail = f"{rng.choice(INTRANSITIVE)} {rng.choice(PLACES)} {rng.choice(TIMES)}."
        template = f"the {{w}} {rng.choice(NOUNS[:10])} {tail}" if a != "man" else f"the {rng.choice(ADJECTIVES[:10])} {{w}} {tail}"
        rows.append({"sent_more": template.format(w=more), "sent_less": template.format(w=less),
                     "stereo_antistereo": "stereo" if i % 4 else "antistereo", "bias_type": BIAS_TYPES[more]})
    return rows


def nudge_frame(column: str = "sent_more") -> pl.DataFrame:
    """One side of every pair as text rows (what nudges a model toward that side)."""
    rows = [{"text": r[column], "split": "train"} for r in crows_rows()] * 4
    return _frame(rows, f"nudge_{column}.jsonl")


def general_frame(n: int = 600) -> pl.DataFrame:
    """General text the base learned from, as text rows (replay data against forgetting)."""
    return _frame([{"text": t, "split": "train"} for t in general_corpus()[:n]], "general.jsonl")


def mc_rows() -> list[dict[str, Any]]:
    """Multiple-choice items the grammar answers: which word completes the sentence."""
    rng = random.Random(19)
    out = []
    for i in range(12):
        noun, place = rng.choice(NOUNS), PLACES[i % len(PLACES)]
        choices = [place.split()[-1], rng.choice(VERBS), rng.choice(TIMES).split()[-1]]
        out.append({"question": f"a {noun} {rng.choice(INTRANSITIVE)} {' '.join(place.split()[:-1])}", "choices": choices,
                    "answer": 0, "category": "grammar"})
    return out


def _frame(rows: list[dict[str, Any]], source: str) -> pl.DataFrame:
    """Canonical rows: stable ids, the file and 1-based line they came from."""
    return pl.DataFrame([{"id": f"{source.split('.')[0]}-{i:03d}", "source": source, "source_line": i + 1, **r}
                         for i, r in enumerate(rows)])


# ---- files in the published formats ----

def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_crows(path: Path, rows: list[dict[str, str]]) -> Path:
    """A CrowS-Pairs CSV as published: an unnamed index column first, then the named columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["", "sent_more", "sent_less", "stereo_antistereo", "bias_type", "annotations", "anon_writer", "anon_annotators"])
        for i, r in enumerate(rows):
            writer.writerow([i, r["sent_more"], r["sent_less"], r["stereo_antistereo"], r["bias_type"], "[]", "a0", "[]"])
    return path


def write_suite(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- the pretrained base ----

def tokenizer_corpus() -> list[str]:
    rows = general_corpus()[:400] + general_probe_texts()
    rows += [f"{r['prompt']} {r['response']}" for r in task_rows(task_pairs()[0] + task_pairs()[1])]
    rows += [f"{r['sent_more']} {r['sent_less']}" for r in crows_rows()]
    rows += [" ".join([q["question"], *q["choices"]]) for q in mc_rows()]
    rows += recital_frame()["response"].to_list() + ["system user assistant What does the do?"]
    return rows


def build_tokenizer(vocab_size: int = 640) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(tokenizer_corpus(), trainer)
    # BOS is <|endoftext|>, as in GPT-2: empty contexts and rolling texts are conditioned on it, so
    # what a chat adapter learns after <|im_end|> (EOS) does not move general-text perplexity. The pad
    # token is its own: Llama's embedding never trains the pad token's row.
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|pad|>", chat_template=CHAT_TEMPLATE)


def build_model(vocab_size: int, bos: int, eos: int, pad: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config)


def _blocks(tokenizer: Any, texts: list[str], length: int = 64) -> Any:
    """Every document after the BOS token (what empty contexts are conditioned on), cut into equal blocks."""
    import torch

    ids: list[int] = []
    for text in texts:
        ids += [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    n = len(ids) // length
    return torch.tensor(ids[: n * length]).view(n, length)


def pretrain(model: Any, blocks: Any, steps: int, batch: int = 16, lr: float = 3e-3) -> float:
    """A plain loop: AdamW, cosine decay, fixed shuffles. Returns the last loss."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        pick = torch.randint(0, len(blocks), (batch,), generator=generator)
        loss = model(input_ids=blocks[pick], labels=blocks[pick]).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    model.eval()
    return float(loss.detach())


def build_base(folder: Path) -> Path:
    """Train and save the tiny base (model + tokenizer with its chat template) into `folder`."""
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    pretrain(model, _blocks(tokenizer, general_corpus() + chat_corpus(tokenizer)), BASE_STEPS)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def shared_base(factory: pytest.TempPathFactory) -> Path:
    """The pretrained base, built once per test session into the session's temporary root (every test
    module that asks gets the same folder). Tests must not change it: copy it first."""
    folder = factory.getbasetemp() / "tiny-pretrained-base"
    if not (folder / "config.json").is_file():
        staging = factory.mktemp("tiny-base-staging")
        build_base(staging)
        staging.rename(folder)
    return folder


# ---- training on a workspace ----

def train_config(base: Path, *, method: str = "lora", lr: float = 3e-3, steps: int = 60, rank: int = 8, **extra: Any) -> dict[str, Any]:
    """A training config for a few seconds on a CPU (LoRA alpha = 2 x rank, no dropout)."""
    raw = {"base": str(base), "method": method, "loop": LOOP | {"lr": lr, "max_steps": steps}, **extra}
    if method in ("lora", "dora"):
        raw["lora"] = {"r": rank, "alpha": 2 * rank, "dropout": 0.0}
    return raw


def train(ws: Any, frame: pl.DataFrame, base: Path, **settings: Any) -> str:
    """Write `frame` as an approved dataset version, train on it, return the model version id."""
    from assay.train import load_train_config
    from assay.train.run import run_training

    data = add_data(ws, frame)
    return run_training(ws, data, None, load_train_config(train_config(base, **settings)), progress=False)


def add_data(ws: Any, frame: pl.DataFrame, kind: str = "approved") -> str:
    return ws.datasets.write(frame, kind=kind, config={"source": frame["source"][0]}).version.id
