"""Held-out input splits: readers record them in `split`, and the split step never moves them into train.

Inputs name splits three ways: a Hugging Face DatasetDict's split names, a `split` column, or one
file per split (train.jsonl + test.jsonl). Rows without one are split by the configured ratios.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.curate.config import CurateConfig
from assay.curate.pipeline import curate
from assay.curate.readers import ReadConfig, expand_inputs, read_chunks
from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.split import SplitConfig, pool_ratios
from assay.errors import ConfigError, InputError
from assay.schema import SPLIT
from tests.conftest import write_jsonl

# fmt: off
WORDS = [
    "river", "stone", "lamp", "garden", "winter", "bread", "violin", "cotton", "orbit", "meadow", "ladder",
    "copper", "signal", "harbor", "pencil", "thunder", "maple", "canvas", "engine", "silver", "forest",
    "candle", "mirror", "planet", "valley", "rocket", "basket", "shadow", "island", "feather", "bridge",
    "marble", "window", "pepper", "blanket", "station", "lantern", "compass", "harvest", "ribbon",
    "saddle", "glacier",
]
# fmt: on


def _rows(n: int, seed: int = 5) -> list[dict]:
    """Distinct question/answer pairs that pass the default quality filters."""
    rng = random.Random(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    return [
        {
            "question": f"Question {i}: what about the {words(10)}?",
            "answer": f"The {words(24)} and the team went home.",
        }
        for i in range(n)
    ]


def _curated(ws, inputs: list, **cfg) -> pl.DataFrame:
    result = curate(ws, inputs, CurateConfig(**cfg))
    return ws.datasets.get(result.version_id).data().collect()


def _read(inputs: list, **cfg) -> pl.DataFrame:
    frames = [c.rows for f in expand_inputs(inputs) for c in read_chunks(f, ReadConfig(**cfg))]
    return pl.concat(frames, how="diagonal_relaxed")


def _save_dataset_dict(folder: Path, splits: dict[str, list[dict]]) -> Path:
    datasets = pytest.importorskip("datasets")
    parts = {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    datasets.DatasetDict(parts).save_to_disk(str(folder))
    return folder


# --------------------------------------------------------------------------- end to end


def test_dataset_dict_test_rows_stay_in_test(ws, tmp_path):
    rows = _rows(500)
    folder = _save_dataset_dict(tmp_path / "dd", {"train": rows[:400], "test": rows[400:]})
    data = _curated(ws, [folder])
    test = data.filter(pl.col("source") == "dd/test")
    train = data.filter(pl.col("source") == "dd/train")
    assert (test.height, train.height) == (100, 400)
    assert test[SPLIT].unique().to_list() == ["test"]
    assert sorted(train[SPLIT].unique()) == ["train", "val"]  # val is carved from train; test gets none
    assert 5 <= train.filter(pl.col(SPLIT) == "val").height <= 40
    assert "orig_split" not in data.columns and "split_moved" not in data.columns


def test_dataset_dict_with_only_train_splits_as_before(ws, tmp_path):
    folder = _save_dataset_dict(tmp_path / "dd", {"train": _rows(300)})
    data = _curated(ws, [folder])
    assert sorted(data[SPLIT].unique()) == ["test", "train", "val"]


def test_split_column_is_read_and_kept(ws, tmp_path):
    rows = _rows(200)
    names = ["train", "Validation", "TEST", None, "dev", "testing"]
    for i, row in enumerate(rows):
        row["split"] = names[i % len(names)]
    data = _curated(ws, [write_jsonl(tmp_path / "data.jsonl", rows)]).sort("source_line")
    expected = {"Validation": "val", "dev": "val", "TEST": "test", "testing": "test"}
    given = [names[(line - 1) % len(names)] for line in data["source_line"]]
    assert data.height == 200 and "orig_split" not in data.columns
    for name, split in zip(given, data[SPLIT], strict=True):
        if name in expected:
            assert split == expected[name]
        else:  # train and unlabelled rows: val and test come from the input, so they all stay in train
            assert split == "train"


def test_file_per_split_inputs(ws, tmp_path):
    rows = _rows(300)
    write_jsonl(tmp_path / "data" / "train.jsonl", rows[:240])
    write_jsonl(tmp_path / "data" / "test.jsonl", rows[240:])
    data = _curated(ws, [tmp_path / "data"])
    by_source = dict(data.group_by("source").agg(pl.col(SPLIT).unique().sort()).iter_rows())
    assert by_source == {"data/test.jsonl": ["test"], "data/train.jsonl": ["train", "val"]}


def test_a_lone_train_file_is_split_by_the_ratios(ws, tmp_path):
    path = write_jsonl(tmp_path / "data" / "train.jsonl", _rows(300))
    assert SPLIT not in _read([path]).columns
    data = _curated(ws, [path])
    assert sorted(data[SPLIT].unique()) == ["test", "train", "val"]


def test_resplit_pools_input_splits_as_before(ws, tmp_path):
    rows = _rows(500)
    folder = _save_dataset_dict(tmp_path / "dd", {"train": rows[:400], "test": rows[400:]})
    data = _curated(ws, [folder], split={"input_splits": "resplit"})
    assert sorted(data.filter(pl.col("source") == "dd/test")[SPLIT].unique()) == ["test", "train", "val"]


def test_input_splits_setting_is_dumped_only_when_changed():
    default = CurateConfig().model_dump(mode="json")["split"]
    assert "input_splits" not in default and set(default) == {"ratios", "stratify_by", "group_by"}
    assert (
        CurateConfig(split={"input_splits": "resplit"}).model_dump(mode="json")["split"]["input_splits"]
        == "resplit"
    )
    assert SplitConfig.model_fields["input_splits"].description


def test_near_duplicate_across_splits_is_moved_with_a_note(ws, tmp_path):
    rows = _rows(60)
    long_answer = " ".join(["the meadow and the river"] * 3 + [r["answer"] for r in rows[:4]])
    original = {"question": "Tell me about the long walk home?", "answer": long_answer, "split": "train"}
    words = long_answer.split()
    words[len(words) // 2] = "lantern"
    copy = {**original, "answer": " ".join(words), "split": "test"}
    others = [{**r, "split": "test" if i % 4 == 0 else "train"} for i, r in enumerate(rows[4:])]
    path = write_jsonl(tmp_path / "qa.jsonl", [original, *others, copy])
    data = _curated(ws, [path], near_dedup={"action": "flag"})
    first, moved = (
        data.filter(pl.col("source_line") == 1),
        data.filter(pl.col("source_line") == len(others) + 2),
    )
    assert moved["dup_cluster"][0] == first["dup_cluster"][0] == first["id"][0]
    assert moved[SPLIT][0] == first[SPLIT][0] != "test"
    cluster, split = first["id"][0], first[SPLIT][0]
    assert moved["split_moved"][0] == f"test → {split}: near-duplicate cluster {cluster} starts in train"
    assert data.filter(pl.col("split_moved").is_not_null()).height == 1


# --------------------------------------------------------------------------- the split step

HELD_OUT = ("val", "test")


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 12), st.sampled_from([None, "train", "val", "test"])),
        min_size=1,
        max_size=80,
    ),
    seed=st.integers(0, 3),
)
def test_split_step_keeps_input_splits_and_clusters(rows, seed):
    df = pl.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(rows))],
            "dup_cluster": [f"c{c}" for c, _ in rows],
            SPLIT: [s for _, s in rows],
        },
        schema_overrides={SPLIT: pl.String},
    )
    out = REGISTRY["split"].fn(df.lazy(), SplitConfig(), StepContext(seed=seed)).collect()
    assert out.group_by("dup_cluster").agg(pl.col(SPLIT).n_unique())[SPLIT].max() == 1
    supplied = {s for _, s in rows if s in HELD_OUT}
    notes = out["split_moved"].to_list() if "split_moved" in out.columns else [None] * len(rows)
    starts: dict[int, str | None] = {}
    for (cluster, given_split), final, note in zip(rows, out[SPLIT], notes, strict=True):
        start = starts.setdefault(cluster, given_split)  # the cluster's first row decides
        fixed = start if start in HELD_OUT else None
        assert final == fixed if fixed else final not in supplied
        held = given_split if given_split in HELD_OUT else None
        assert (note is not None) == (given_split is not None and held != fixed)


def test_pool_ratios_renormalise_what_the_input_does_not_supply():
    ratios = {"train": 0.9, "val": 0.05, "test": 0.05}
    assert pool_ratios(ratios, set()) == ratios
    assert pool_ratios(ratios, {"test"}) == pytest.approx({"train": 0.9 / 0.95, "val": 0.05 / 0.95})
    assert pool_ratios(ratios, {"val", "test"}) == {"train": 1.0}


def test_split_step_refuses_unknown_split_names():
    df = pl.DataFrame({"id": ["a", "b"], SPLIT: ["train", "holdout"]})
    with pytest.raises(ConfigError, match="holdout"):
        REGISTRY["split"].fn(df.lazy(), SplitConfig(), StepContext()).collect()
    resplit = REGISTRY["split"].fn(df.lazy(), SplitConfig(input_splits="resplit"), StepContext()).collect()
    assert set(resplit[SPLIT]) <= {"train", "val", "test"}


# --------------------------------------------------------------------------- readers


def test_readers_record_dataset_dict_split_names(tmp_path):
    rows = _rows(12)
    folder = _save_dataset_dict(
        tmp_path / "dd", {"train": rows[:6], "validation": rows[6:9], "test": rows[9:]}
    )
    data = _read([folder])
    assert dict(data.group_by("source").agg(pl.col(SPLIT).first()).iter_rows()) == {
        "dd/train": "train",
        "dd/validation": "val",
        "dd/test": "test",
    }


def test_unknown_dataset_dict_split_name_is_an_error(tmp_path):
    rows = _rows(6)
    folder = _save_dataset_dict(tmp_path / "dd", {"train": rows[:3], "unsupervised": rows[3:]})
    with pytest.raises(InputError, match="unsupervised") as info:
        _read([folder])
    assert str(folder / "unsupervised") in str(info.value)


def test_file_names_count_as_splits_only_when_two_differ(tmp_path):
    write_jsonl(tmp_path / "a" / "train.jsonl", _rows(2))
    write_jsonl(tmp_path / "a" / "notes.jsonl", _rows(2, seed=1))
    assert [f.split for f in expand_inputs([tmp_path / "a"])] == [None, None]
    write_jsonl(tmp_path / "b" / "train-00000-of-00002.jsonl", _rows(2))
    write_jsonl(tmp_path / "b" / "dev.jsonl", _rows(2, seed=1))
    write_jsonl(tmp_path / "b" / "extra.jsonl", _rows(2, seed=2))
    files = expand_inputs([tmp_path / "b"])
    assert [(f.source, f.split) for f in files] == [
        ("b/dev.jsonl", "val"),
        ("b/extra.jsonl", None),
        ("b/train-00000-of-00002.jsonl", "train"),
    ]


def test_folder_per_split(tmp_path):
    write_jsonl(tmp_path / "data" / "train" / "part-0.jsonl", _rows(2))
    write_jsonl(tmp_path / "data" / "eval" / "part-0.jsonl", _rows(2, seed=1))
    files = expand_inputs([tmp_path / "data"])
    assert [(f.source, f.split) for f in files] == [
        ("data/eval/part-0.jsonl", "val"),
        ("data/train/part-0.jsonl", "train"),
    ]


def test_unexpected_split_values_name_file_column_values_and_fix(tmp_path):
    rows = [
        {**r, "split": s} for r, s in zip(_rows(4), ["train", "holdout", "fold1", "holdout"], strict=True)
    ]
    path = write_jsonl(tmp_path / "x.jsonl", rows)
    with pytest.raises(InputError) as info:
        _read([path])
    message = str(info.value)
    assert f"column `split` in {path} has values other than train/val/test: fold1, holdout" in message
    assert "columns.split" in message and "rename" in message


def test_split_column_can_be_mapped(tmp_path):
    rows = [{**r, "fold": s, "split": "A"} for r, s in zip(_rows(3), ["train", "valid", "test"], strict=True)]
    data = _read([write_jsonl(tmp_path / "x.jsonl", rows)], columns={"split": "fold"})
    assert data[SPLIT].to_list() == ["train", "val", "test"]
    assert data["orig_split"].to_list() == ["A"] * 3 and "fold" not in data.columns


def test_split_column_in_csv_treats_empty_as_unsplit(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("text,split\nfirst row,train\nsecond row,\nthird row,test\n")
    assert _read([path])[SPLIT].to_list() == ["train", None, "test"]


def test_split_column_that_is_not_text_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "a", "split": 1}, {"text": "b", "split": 2}])
    with pytest.raises(InputError, match="has values other than train/val/test: 1, 2"):
        _read([path])


def test_json_lines_split_values_survive_a_block_polars_cannot_type(tmp_path):
    lines = [
        json.dumps({"text": "a", "meta": {"k": 1}, "split": "test"}),
        json.dumps({"text": "b", "meta": [1], "split": "train"}),
    ]
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert _read([path])[SPLIT].to_list() == ["test", "train"]
