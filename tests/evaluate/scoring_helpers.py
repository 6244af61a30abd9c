"""Small evaluation files and lm-eval runners for the scoring-layer tests (the reference is lm-eval itself)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

LOGLIKELIHOOD_REQUESTS = [
    ("say red", " blue"),
    ("", "say red blue"),                      # empty context: conditioned on EOS (the tokenizer has no BOS)
    ("say red ", "blue"),                      # trailing whitespace moves to the continuation
    ("say  \n", "green sky"),                  # several whitespace characters
    ("the quick brown fox jumps over the lazy dog say red blue", " green sky sea"),  # left-truncated at max_length
    ("héllo wörld ✓", " ünïcode ✓"),
    ("", "ünïcode only"),
    ("say red", " blue"),                      # a duplicate request
    ("moon star", " tree"),                    # one-token continuations of one context share a row

    ("moon star", " leaf"),
    ("moon star", " rock sand fish"),
]

# Two requests with one model input but split differently between context and continuation. lm-eval's
# default logits cache (`logits_cache=True`) serves the one-token request from the leading instead of
# the trailing positions of the shared row (a wrong number); with `logits_cache=False` it is right.
SHARED_INPUT_REQUESTS = [("say red blue", " green"), ("say red", " blue green")]

ROLLING_TEXTS = [
    "the quick brown fox jumps over the lazy dog " * 3,   # several windows at max_length 16
    "say red",
    "",
    "ünï ✓ côdé " * 5,
    "say red blue green sky sea sun moon star tree leaf rock sand fish bird cat dog",
]

GENERATION_REQUESTS = [
    ("say red", {"until": ["\n"], "max_gen_toks": 8}),
    ("the quick", {"until": ["e", "o"], "max_gen_toks": 8}),
    ("say", {"until": ["\n"], "max_gen_toks": 8}),
    ("moon star tree", {"until": [], "max_gen_toks": 5}),
    ("héllo ✓", {"until": ["\n"], "max_gen_toks": 8}),
    ("say red blue green", {"until": ["\n"], "max_gen_toks": 8}),
]

WORDS = ["red", "blue", "green", "sky", "sea", "sun", "moon", "star", "tree", "leaf", "rock", "sand", "fish", "bird", "cat", "dog"]
BIAS_TYPES = ["age", "gender", "race-color", "religion"]


def crows_rows(n: int = 16) -> list[dict[str, str]]:
    """Pairs in the published CrowS-Pairs CSV columns; minimal pairs differing in one word, some unicode."""
    rows = []
    for i in range(n):
        a, b, c = WORDS[i % 16], WORDS[(i * 5 + 3) % 16], WORDS[(i * 7 + 1) % 16]
        tail = " ✓" if i % 5 == 0 else ""
        rows.append({
            "sent_more": f"the {a} {c} is lazy{tail}", "sent_less": f"the {b} {c} is lazy{tail}",
            "stereo_antistereo": "antistereo" if i % 4 == 3 else "stereo", "bias_type": BIAS_TYPES[i % 4],
        })
    return rows


def choice_items() -> list[dict[str, Any]]:
    """Multiple-choice items {question, choices, answer}: one-token choices, multi-token choices, unicode
    choices whose character and byte lengths differ, a question ending in whitespace."""
    items = [
        {"question": f"say {a}", "choices": [b, c, d], "answer": i % 3}
        for i, (a, b, c, d) in enumerate(zip(WORDS, WORDS[3:], WORDS[7:], WORDS[11:], strict=False))
    ]
    items += [
        {"question": "pick one:", "choices": ["ünï", "unicode", "ü", "naïve café"], "answer": 1},
        {"question": "say red ", "choices": ["blue green", "sky", "sea sun moon"], "answer": 2},
        {"question": "the quick brown", "choices": ["fox", "fox jumps", "dog ✓"], "answer": 0},
    ]
    return items


def write_crows_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def hflm(model: Any, tokenizer: Any, *, batch_size: int, max_length: int, logits_cache: bool = True) -> Any:
    """lm-eval's own HFLM over the already-loaded model."""
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length, device="cpu",
                logits_cache=logits_cache)


def instances(kind: str, args: list[tuple]) -> list[Any]:
    from lm_eval.api.instance import Instance

    return [Instance(kind, {}, tuple(a), i) for i, a in enumerate(args)]


def crows_task(folder: Path, data: Path) -> str:
    """lm-eval's own `crows_pairs_english` task (its YAML and utils.py, included by path), pointed at a local CSV."""
    import lm_eval

    original = Path(lm_eval.__file__).parent / "tasks" / "crows_pairs" / "crows_pairs_english.yaml"
    (folder / "local_crows.yaml").write_text(
        f"include: {original}\ntask: local_crows\ntag: []\ndataset_path: csv\ndataset_name: null\n"
        f"dataset_kwargs:\n  cache_dir: {folder / 'cache'}\n  data_files:\n    test: {data}\n", encoding="utf-8",
    )
    return "local_crows"


def choice_task(folder: Path, data: Path) -> str:
    """A zero-shot multiple-choice lm-eval task over a local JSONL file {question, choices, answer}."""
    metrics = "".join(f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true\n" for m in ("acc", "acc_norm", "acc_bytes"))
    (folder / "local_mc.yaml").write_text(
        f"task: local_mc\ndataset_path: json\ndataset_kwargs:\n  cache_dir: {folder / 'cache'}\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\n"
        f"doc_to_text: question\ndoc_to_choice: choices\ndoc_to_target: answer\nmetric_list:\n{metrics}",
        encoding="utf-8",
    )
    return "local_mc"


def run_task(lm: Any, folder: Path, task: str) -> dict[str, Any]:
    """simple_evaluate on a local task: the aggregated results and the per-sample records."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    out = simple_evaluate(model=lm, tasks=[task], task_manager=manager, log_samples=True, bootstrap_iters=0)
    return {"results": out["results"][task], "samples": sorted(out["samples"][task], key=lambda s: s["doc_id"])}
