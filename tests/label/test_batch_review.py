"""A batch with review in the real embedded Argilla: it waits (exit 0, saying for what), simulated reviewers
answer through the API, and the rerun pulls the approved version, trains, evaluates and promotes."""

from __future__ import annotations

import json

import pytest

from assay.label.simulated import PREFIX, ensure_reviewers, simulate_reviews
from tests.batch.conftest import LOOP, batch_file
from tests.conftest import run_json
from tests.train.helpers import build_model, build_tokenizer

pytestmark = pytest.mark.argilla


def judge(name: str, record: dict) -> dict:
    """Approve a correct copy answer, fix a wrong one (the rows' answers are the prompt's three words)."""
    prompt, response = record["fields"]["prompt"], record["fields"].get("response", "")
    words = prompt.split()
    expected = f"{words[1]} {words[2]} {words[5]}"
    if response == expected:
        return {"decision": "approve"}
    return {"decision": "edit", "corrected_response": expected}


def test_batch_waits_for_reviews_then_finishes(review_workspace, tmp_path, monkeypatch):
    ws = review_workspace
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    base = tmp_path / "base"
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    path = batch_file(tmp_path / "b", base, review='mode = "argilla"\ndataset = "batch-review-test"',
                      candidates=f'[[candidates]]\nname = "lora"\ntrain = {{ {LOOP} }}\n', extra="\n[label]\nmin_submitted = 2\n")
    rows = [json.loads(line) for line in (tmp_path / "b" / "data" / "pairs.jsonl").read_text().splitlines()]
    rows[0]["response"] = "wrong words here"
    (tmp_path / "b" / "data" / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    waiting = run_json("batch", "run", str(path), "-w", str(ws.root))
    assert waiting["state"] == "waiting" and "records to reach 2 submission(s)" in waiting["message"]
    assert "batch-review-test" in waiting["message"]
    status = run_json("batch", "status", str(path), "-w", str(ws.root))["batches"][0]
    assert status["state"] == "waiting" and status["stages"]["review"]["completed"] == 0

    reviewers = ensure_reviewers(ws, 2)
    assert [r.name for r in reviewers] == [f"{PREFIX}1", f"{PREFIX}2"]
    submitted = simulate_reviews(ws, "batch-review-test", reviewers, judge)
    assert set(submitted.values()) == {status["stages"]["review"]["records"]}
    assert simulate_reviews(ws, "batch-review-test", reviewers, judge) == {r.name: 0 for r in reviewers}, "nothing twice"

    done = run_json("batch", "run", str(path), "-w", str(ws.root))
    assert done["state"] == "done"
    approved = ws.datasets.get(done["stages"]["review"]["version"])
    assert approved.kind == "approved" and approved.manifest["review"]["responses"]["by_annotator"].keys() == {r.name for r in reviewers}
    data = approved.data().collect()
    assert data.filter(data["prompt"] == rows[0]["prompt"])["response"].to_list() == [" ".join(rows[0]["prompt"].split()[i] for i in (1, 2, 5))]
    model = ws.models.get(done["candidates"]["lora"]["train"]["model"])
    assert model.manifest["data"] == [approved.id]
