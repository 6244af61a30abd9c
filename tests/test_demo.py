"""The README's demo, end to end in a fresh workspace, then the data commands on its result."""

from pathlib import Path

from tests.conftest import run_cli, run_json


def test_demo_from_init_to_export(tmp_path):
    ws = str(tmp_path / "demo-ws")
    res = run_json("demo", "--workspace", ws)
    counts = res["counts"]
    steps = {s["step"]: s for s in counts["steps"]}
    assert counts["quarantined"] == 2
    assert counts["input_rows"] == counts["kept"] + counts["rejected"] + counts["quarantined"]
    assert steps["decontaminate"]["removed"] == {"eval_overlap": 3}, "the three leaked eval questions"
    assert steps["pii"]["changed"] == 6, "six rows carry an email and a phone number"
    assert sum(steps["quality"]["removed"].values()) == 4, "the four junk rows"
    assert steps["exact_dedup"]["removed"]["exact_duplicate"] >= 20 and steps["near_dedup"]["removed"]
    again = run_json("demo", "--workspace", ws)
    assert again["version"] == res["version"] and again["reused"]
    human = run_cli("demo", "--workspace", ws).stdout
    assert res["version"] in human and "exact_duplicate" in human
    assert Path(res["report"]).read_text().count("<h2>") >= 5
    out = tmp_path / "demo.jsonl"
    run_cli("data", "export", "demo-curated", "--out", str(out), "-w", ws)
    text = out.read_text()
    assert len(text.splitlines()) == counts["kept"] and "[EMAIL]" in text and "mailbox.org" not in text
