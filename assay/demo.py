"""The demo: a sample data set that assay generates itself, curated into a version and shown.

It needs no network and no files from outside the package, so it runs on a fresh machine.
The sample carries the faults curation exists for: exact and near copies, personal data,
junk responses, malformed lines and questions leaked from an eval set.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from assay.curate.pipeline import curate
from assay.curate.report import write_report
from assay.workspace import Workspace

_CITIES = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Canada", "Ottawa"),
           ("Norway", "Oslo"), ("Egypt", "Cairo"), ("Chile", "Santiago"), ("India", "New Delhi"), ("Spain", "Madrid")]
_NAMES = ["Sam", "Ana", "Li", "Omar", "Mia", "Raj", "Zoe", "Ivan", "Noor", "Tom", "Ada", "Ben", "Eva", "Kai", "Lea", "Max"]
_ITEMS = ["apples", "books", "coins", "stamps", "pencils", "marbles", "tickets", "shells"]
_PLACES = ["the market", "a fair", "the library sale", "an online shop", "the school store", "a neighbour"]
_DAYS = ["Monday", "Tuesday", "Friday", "the weekend", "a rainy afternoon", "the holidays"]


def _math_row(rng: random.Random) -> dict:
    # Varying words every few tokens, so unrelated problems share no long word runs (as real data).
    name, friend, item = *rng.sample(_NAMES, 2), rng.choice(_ITEMS)
    place, day = rng.choice(_PLACES), rng.choice(_DAYS)
    a, b, c = rng.randint(12, 99), rng.randint(2, 40), rng.randint(2, 19)
    question = (f"On {day} {name} has {a} {item}, buys {b} more at {place}, then gives {friend} {c} {item}. "
                f"How many {item} does {name} keep?")
    answer = (f"{name} has {a} + {b} = {a + b} {item} after {place}. Giving {friend} {c} leaves "
              f"{a + b} - {c} = {a + b - c} {item}.")
    return {"instruction": question, "input": "", "output": answer, "topic": "math"}


def _geo_row(rng: random.Random) -> dict:
    country, capital = rng.choice(_CITIES)
    fact = rng.choice(["It is the largest city in the country", "It hosts the national government",
                       "Many museums and parks are found there"])
    return {"instruction": f"What is the capital of {country}, and what is one fact about it?", "input": "",
            "output": f"The capital of {country} is {capital}. {fact}.", "topic": "geography"}


def sample_rows(n: int = 300, seed: int = 0, geo_every: int = 10) -> list[dict]:
    """Alpaca-style instruction rows: arithmetic word problems and (every `geo_every`-th) capital-city questions."""
    rng = random.Random(seed)
    return [_geo_row(rng) if geo_every and i % geo_every == 0 else _math_row(rng) for i in range(n)]


def _near_copy(row: dict, rng: random.Random) -> dict:
    words = row["output"].split()
    words[rng.randrange(len(words))] = rng.choice(["then", "so", "now"])
    return {**row, "output": " ".join(words)}


def _faults(rows: list[dict], evals: list[dict], rng: random.Random) -> list[dict]:
    copies = [dict(r) for r in rng.sample(rows, 12)]
    spacing = [{**r, "instruction": "  " + r["instruction"].replace(" ", "  ") + "\u00a0"} for r in rng.sample(rows, 8)]
    near = [_near_copy(r, rng) for r in rng.sample(rows, 10)]
    pii = [{**r, "output": r["output"] + f" Questions? Email {n.lower()}.tutor@mailbox.org or call (415) 555-01{i:02d}."}
           for i, (r, n) in enumerate(zip(rng.sample(rows, 6), _NAMES, strict=False))]
    junk = [
        {"instruction": "Explain photosynthesis in one paragraph.", "input": "", "output": "", "topic": "science"},
        {"instruction": "Write a poem about the sea.", "input": "",
         "output": "As an AI language model, I cannot write poems.", "topic": "writing"},
        {"instruction": "Repeat after me: hello there", "input": "", "output": "Repeat after me: hello there", "topic": "misc"},
        {"instruction": "asdf qwer zxcv", "input": "", "output": "jkl; jkl; jkl; jkl; jkl; jkl; jkl; jkl;", "topic": "misc"},
    ]
    leaked = [{**e, "input": ""} for e in evals[:3]]
    return copies + spacing + near + pii + junk + leaked


def write_sample(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """The training file (with faults and two broken lines) and a held-out eval file."""
    rng = random.Random(seed + 1)
    rows, evals = sample_rows(seed=seed), sample_rows(n=40, seed=seed + 100, geo_every=0)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows + _faults(rows, evals, rng)]
    lines.insert(50, '{"instruction": "What is 2 + 2?", "output": "4"')  # truncated JSON
    lines.insert(120, '["not", "an", "object"]')
    folder.mkdir(parents=True, exist_ok=True)
    train, held_out = folder / "instructions.jsonl", folder / "eval.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    held_out.write_text("".join(json.dumps(e) + "\n" for e in evals), encoding="utf-8")
    return train, held_out


def run_demo(workspace: str | Path | None = None, echo: Callable[..., None] | None = print) -> dict:
    """Init the workspace, generate the sample, curate it, and return what happened."""
    say = echo or (lambda *a, **k: None)
    ws, _ = Workspace.init(workspace)
    say(f"[1/3] workspace: {ws.root}")
    train, held_out = write_sample(ws.root / "demo" / "raw")
    say(f"[2/3] generated sample data: {train} (+ eval set {held_out.name} to protect)")
    cfg = ws.config.curate.model_copy(update={"decontaminate": ws.config.curate.decontaminate.model_copy(update={"evals": [str(held_out)]})})
    result = curate(ws, [train], cfg, name="demo-curated")
    c = result.counts
    say(f"[3/3] curated version {result.version_id}: {c['input_rows']} input rows → {c['kept']} kept, "
        f"{c['rejected']} rejected, {c['quarantined']} quarantined" + (" (unchanged: rerun is a no-op)" if result.reused else ""))
    report = write_report(ws, result.write.version)
    return {"workspace": str(ws.root), "sample": str(train), "report": report["html"], **result.to_dict()}
