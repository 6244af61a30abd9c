"""The demo: a sample data set that assay generates itself, curated into a version and shown.

It needs no network and no files from outside the package, so it runs on a fresh machine.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from assay.curate.pipeline import curate
from assay.workspace import Workspace

_CITIES = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Canada", "Ottawa"),
           ("Norway", "Oslo"), ("Egypt", "Cairo"), ("Chile", "Santiago"), ("India", "New Delhi"), ("Spain", "Madrid")]


def sample_rows(n: int = 240, seed: int = 0) -> list[dict]:
    """Alpaca-style instruction rows: arithmetic word problems and capital-city questions."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if i % 3:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            item = rng.choice(["apples", "books", "coins", "stamps"])
            rows.append({"instruction": f"Sam has {a} {item} and buys {b} more. How many {item} does Sam have now?",
                         "input": "", "output": f"Sam has {a} + {b} = {a + b} {item}.", "topic": "math"})
        else:
            country, capital = rng.choice(_CITIES)
            style = rng.choice(["What is the capital of {c}?", "Name the capital city of {c}.", "Which city is the capital of {c}?"])
            rows.append({"instruction": style.format(c=country), "input": "",
                         "output": f"The capital of {country} is {capital}.", "topic": "geography"})
    return rows


def write_sample(folder: Path, seed: int = 0) -> Path:
    """A JSONL file with realistic faults: exact copies, whitespace/Unicode variants, two broken lines."""
    rng = random.Random(seed + 1)
    rows = sample_rows(seed=seed)
    copies = [dict(r) for r in rng.sample(rows, 12)]
    variants = [{**r, "instruction": "  " + r["instruction"].replace(" ", "  ") + "\u00a0"} for r in rng.sample(rows, 8)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows + copies + variants]
    lines.insert(50, '{"instruction": "What is 2 + 2?", "output": "4"')  # truncated JSON
    lines.insert(120, '["not", "an", "object"]')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "instructions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_demo(workspace: str | Path | None = None, echo: Callable[..., None] | None = print) -> dict:
    """Init the workspace, generate the sample, curate it, and return what happened."""
    say = echo or (lambda *a, **k: None)
    ws, _ = Workspace.init(workspace)
    say(f"[1/3] workspace: {ws.root}")
    sample = write_sample(ws.root / "demo" / "raw")
    say(f"[2/3] generated sample data: {sample}")
    result = curate(ws, [sample], name="demo-curated")
    c = result.counts
    say(f"[3/3] curated version {result.version_id}: {c['input_rows']} input rows → {c['kept']} kept, "
        f"{c['rejected']} rejected, {c['quarantined']} quarantined" + (" (unchanged: rerun is a no-op)" if result.reused else ""))
    if echo is not None:
        from assay.cli.common import out
        from assay.cli.render import steps_table

        out.print(steps_table(c))
        say(f"next: assay data show {result.version_id} --workspace {ws.root}")
    return {"workspace": str(ws.root), "sample": str(sample), **result.to_dict()}
