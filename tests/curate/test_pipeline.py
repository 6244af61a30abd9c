import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.errors import InputError
from tests.conftest import write_jsonl


def _rows():
    return [
        {"instruction": f"How many apples are in basket number {i} of the farm?", "input": "",
         "output": f"There are {i} apples in that basket, as the farmer counted them.", "topic": "t"}
        for i in range(20)
    ]


def test_curate_counts_rejects_and_quarantine(ws, tmp_path):
    rows = _rows() + [_rows()[3], {**_rows()[5], "instruction": " How many apples are in  basket number 5 of the farm? "}]
    src = write_jsonl(tmp_path / "raw" / "a.jsonl", rows, {4: '{"broken": ', 9: "[1, 2]"})
    res = curate(ws, [src])
    c = res.counts
    assert (c["input_rows"], c["read"], c["quarantined"], c["kept"], c["rejected"]) == (24, 22, 2, 20, 2)
    assert next(s for s in c["steps"] if s["step"] == "exact_dedup")["removed"] == {"exact_duplicate": 2}
    v = ws.datasets.get(res.version_id)
    data, rejects, quarantine = v.data().collect(), v.rejects().collect(), v.quarantine().collect()
    assert data.height == 20 and data["id"].n_unique() == 20
    assert set(data.columns) >= {"id", "source", "source_line", "prompt", "response", "topic"}
    assert rejects["step"].to_list() == ["exact_dedup"] * 2
    kept_ids = set(data["id"])
    assert set(rejects["duplicate_of"]) <= kept_ids
    assert sorted(quarantine["source_line"].to_list()) == [5, 10]
    assert data.filter(pl.col("source_line") == 7)["prompt"][0] == "How many apples are in basket number 5 of the farm?"


def test_rerun_is_a_noop_with_the_same_id(ws, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", _rows())
    first = curate(ws, [src])
    second = curate(ws, [src])
    assert second.reused and second.version_id == first.version_id
    assert len(ws.datasets.list()) == 1
    changed = curate(ws, [src], CurateConfig(exact_dedup={"casefold": True}))
    assert changed.version_id != first.version_id


def test_same_input_elsewhere_gives_same_id(tmp_path):
    from assay.workspace import Workspace

    src = write_jsonl(tmp_path / "data" / "a.jsonl", _rows())
    ids = {curate(Workspace.init(tmp_path / f"ws{i}")[0], [src]).version_id for i in range(2)}
    assert len(ids) == 1


def test_strict_refuses_malformed_rows(ws, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", _rows(), {2: "{nope"})
    with pytest.raises(InputError, match=r"a.jsonl:3"):
        curate(ws, [src], CurateConfig(strict=True))
    assert ws.datasets.list() == []


def test_all_rows_malformed_is_an_error(ws, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text("{x\n{y\n")
    with pytest.raises(InputError, match="no usable rows"):
        curate(ws, [src])


def test_name_tags_the_version(ws, tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", _rows())
    res = curate(ws, [src], name="train-v1")
    assert ws.datasets.get("train-v1").id == res.version_id


def _corpus():
    good = st.fixed_dictionaries({"text": st.sampled_from(["a", "b", "c", " a ", "a\u00a0", "d e"])}).map(json.dumps)
    bad = st.sampled_from(["{", "[1]", '{"text": 5', "null"])
    return st.lists(st.one_of(good, good, bad), min_size=1, max_size=40)


def _is_good(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_corpus())
def test_rows_in_equal_kept_plus_rejected_plus_quarantined(tmp_path_factory, lines):
    from assay.workspace import Workspace

    root = tmp_path_factory.mktemp("p")
    ws, _ = Workspace.init(root / "ws")
    src = root / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    try:
        res = curate(ws, [src])
    except InputError:
        assert not any(_is_good(line) for line in lines), "only a file without one good row may fail"
        return
    c = res.counts
    assert c["input_rows"] == len(lines) == c["kept"] + c["rejected"] + c["quarantined"]
    v = ws.datasets.get(res.version_id)
    assert v.data().collect().height + v.rejects().collect().height + v.quarantine().collect().height == len(lines)
