"""The demo's whole loop, unattended, on a tiny model (`--quick`): the real curation, the real Argilla with
simulated reviewers, training, evaluation, gate. The demo on SmolLM2 is the same code with real settings."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from assay.demo import orders
from assay.label.simulated import PREFIX
from tests.train.helpers import build_model, build_tokenizer

pytestmark = pytest.mark.argilla


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo-base")
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_task_data_carries_every_planted_fault(tmp_path):
    raw, held_out = orders.write_data(tmp_path)
    lines = raw.read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
    rows = [r for r in parsed if isinstance(r, dict)]
    assert len(lines) - len(rows) == 2, "two malformed lines"
    truths = [orders.truth(r["instruction"]) for r in rows]
    assert sum(t is None for t in truths) == 2, "two junk rows are not orders"
    wrong = [r for r, t in zip(rows, truths, strict=True) if t is not None and json.loads(r["output"]) != t]
    assert len(wrong) == 8, "eight answers with a wrong city, for reviewers to fix"
    assert sum("@mailbox.org" in r["instruction"] for r in rows) == 6
    held = {json.loads(line)["instruction"] for line in held_out.read_text().splitlines()}
    assert sum(r["instruction"] in held for r in rows) == 4, "four held-out rows leaked into the pool"


def test_the_demo_runs_the_loop_unattended(review_workspace, tiny, monkeypatch, tmp_path):
    from assay.demo import run_demo

    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    ws = review_workspace
    said: list[str] = []
    result = run_demo(ws.root, base=str(tiny), quick=True, say=said.append)
    assert result["state"] == "done" and any("SIMULATED reviewers" in s for s in said)
    steps = {s["step"]: s for s in ws.datasets.get("demo-curated").manifest["counts"]["steps"]}
    assert steps["exact_dedup"]["removed"] == {"exact_duplicate": 10} and steps["near_dedup"]["removed"] == {"near_duplicate": 6}
    assert steps["pii"]["changed"] == 6
    leaked = {json.loads(line)["instruction"] for line in (ws.root / "demo" / "raw" / "held_out.jsonl").read_text().splitlines()}
    rejects = ws.datasets.get("demo-curated").rejects().collect()
    removed = set(rejects.filter(rejects["step"] == "decontaminate")["prompt"].to_list())
    assert len(leaked & removed) == 4, "the four rows copied from the held-out set (templated rows may share 13-grams too)"
    assert sum(steps["quality"]["removed"].values()) == 2
    approved = ws.datasets.get("demo-approved")
    review = approved.manifest["review"]
    assert set(review["responses"]["by_annotator"]) == {f"{PREFIX}1", f"{PREFIX}2"}
    data = approved.data().collect()
    curated = ws.datasets.get("demo-curated").data().collect()
    wrong = {r["id"] for r in curated.iter_rows(named=True) if json.loads(r["response"]) != orders.truth(r["prompt"])}
    left = {r["id"] for r in curated.iter_rows(named=True) if orders.left_for_people({"external_id": r["id"]})}
    corrected = data.filter(data["review_corrected"])
    assert set(corrected["id"]) == (wrong - left) and len(wrong - left) >= 4, "wrong answers reviewed were corrected"
    assert all(json.loads(r["response"]) == orders.truth(r["prompt"]) for r in corrected.iter_rows(named=True))
    not_reviewed = approved.rejects().collect().filter(pl.col("reason") == "not_reviewed")
    assert set(not_reviewed["id"]) == left, "the records left for people were not trained on"
    for name in ("lora", "prompt-tuning"):
        cand = result["candidates"][name]
        assert cand["train"]["model"].startswith("mv-") and cand["eval"]["report"].startswith("rp-")
        assert (Path(cand["eval"]["path"]) / "report.html").is_file()
    assert result["argilla"]["username"] == "curator" and result["argilla"]["password"]
    again = run_demo(ws.root, base=str(tiny), quick=True)
    assert again["candidates"]["lora"]["train"]["model"] == result["candidates"]["lora"]["train"]["model"]
