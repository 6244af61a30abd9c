"""The README's demo, end to end in a fresh workspace, then the data commands on its result."""

from tests.conftest import run_cli, run_json


def test_demo_from_init_to_export(tmp_path):
    ws = str(tmp_path / "demo-ws")
    res = run_json("demo", "--workspace", ws)
    counts = res["counts"]
    assert counts["quarantined"] == 2 and counts["rejected"] >= 12
    assert counts["input_rows"] == counts["kept"] + counts["rejected"] + counts["quarantined"]
    again = run_json("demo", "--workspace", ws)
    assert again["version"] == res["version"] and again["reused"]
    human = run_cli("demo", "--workspace", ws).stdout
    assert res["version"] in human and "exact_duplicate" in human
    out = tmp_path / "demo.jsonl"
    run_cli("data", "export", "demo-curated", "--out", str(out), "-w", ws)
    assert len(out.read_text().splitlines()) == counts["kept"]
