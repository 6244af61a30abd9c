import json
from pathlib import Path

from assay.curate.pipeline import curate
from assay.curate.report import build_report, render_html, write_report
from tests.conftest import sentence, write_jsonl


def test_report_counts_examples_and_escaping(ws, tmp_path):
    evil = "<script>alert('x')</script> & friends"
    rows = [{"prompt": f"Where is library {i}?", "response": sentence(i)} for i in range(30)]
    evil_row = {"prompt": evil, "response": "The page shows a script tag, and it is escaped in the report for safety."}
    rows += [evil_row, dict(evil_row), dict(rows[0])]
    src = write_jsonl(tmp_path / "in.jsonl", rows, {5: "{broken <b>"})
    v = ws.datasets.get(curate(ws, [src]).version_id)
    rep = build_report(v)
    assert rep["counts"]["kept"] == 31 and rep["counts"]["quarantined"] == 1
    [examples] = rep["examples"].values()
    assert {e["duplicate_of"] is not None for e in examples} == {True}
    assert rep["duplicates"]["clusters"] == 2 and rep["duplicates"]["sizes"] == {"2": 2}
    assert sum(rep["distributions"]["chars"]["counts"]) == 31
    assert set(rep["splits"]) <= {"train", "val", "test"} and sum(rep["splits"].values()) == 31
    page = render_html(rep)
    assert "<script>" not in page and "&lt;script&gt;" in page and "{broken &lt;b&gt;" in page
    written = write_report(ws, v)
    assert json.loads(Path(written["json"]).read_text())["version"] == v.id
    assert Path(written["html"]).read_text() == page
