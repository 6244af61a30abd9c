"""Readers: every input shape, every bad-input case, chunking, and the no-lost-row property."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from assay import schema as S
from assay.curate.readers import (
    Chunk,
    InputFile,
    ReadConfig,
    expand_inputs,
    file_fingerprint,
    read_chunks,
)
from assay.errors import InputError

GSM8K = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "train.jsonl"


# --------------------------------------------------------------------------- helpers


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    """Write raw lines (str or bytes) joined by newlines; bytes allow invalid UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n"
    path.write_bytes(data)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_lines(path, [json.dumps(r, ensure_ascii=False) for r in rows])


def read_all(path: Path, **cfg) -> tuple[pl.DataFrame, pl.DataFrame, list[Chunk]]:
    """All rows and quarantined lines of one input file, plus the chunks themselves."""
    (f,) = expand_inputs([path])
    chunks = list(read_chunks(f, ReadConfig(**cfg)))
    rows = pl.concat([c.rows for c in chunks], how="diagonal_relaxed")
    quarantine = pl.concat([c.quarantine for c in chunks])
    return rows, quarantine, chunks


def read_error(path: Path | str, **cfg) -> str:
    with pytest.raises(InputError) as info:
        for f in expand_inputs([path]):
            list(read_chunks(f, ReadConfig(**cfg)))
    return str(info.value)


# --------------------------------------------------------------------------- shapes


def test_openai_messages_keep_role_and_content(tmp_path):
    msgs = [
        {"role": "system", "content": "Be brief.", "name": "sys"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    rows, quarantine, _ = read_all(write_jsonl(tmp_path / "chat.jsonl", [{"messages": msgs, "lang": "en"}]))
    assert rows.schema[S.MESSAGES] == S.MESSAGE_DTYPE
    assert rows[S.MESSAGES].to_list() == [[{"role": m["role"], "content": m["content"]} for m in msgs]]
    assert rows["lang"].to_list() == ["en"]
    assert rows.columns[:2] == [S.SOURCE, S.SOURCE_LINE]
    assert quarantine.is_empty()


def test_sharegpt_conversations_map_roles(tmp_path):
    conv = [
        {"from": "system", "value": "s"},
        {"from": "human", "value": "q"},
        {"from": "gpt", "value": "a"},
        {"from": "User", "value": "q2"},
        {"from": "bot", "value": "a2"},
        {"from": "model", "value": "a3"},
        {"from": "Tool", "value": "t"},
    ]
    rows, _, _ = read_all(write_jsonl(tmp_path / "sg.jsonl", [{"conversations": conv, "id": "x1"}]))
    roles = [m["role"] for m in rows[S.MESSAGES][0]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "assistant", "tool"]
    assert [m["content"] for m in rows[S.MESSAGES][0]] == ["s", "q", "a", "q2", "a2", "a3", "t"]
    assert "conversations" not in rows.columns
    assert rows["orig_id"].to_list() == ["x1"]  # a user `id` would clash with assay's row id


def test_alpaca_joins_instruction_and_input(tmp_path):
    data = [
        {"instruction": "Translate", "input": "Hallo", "output": "Hello"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
        {"instruction": "Say yo", "output": "yo"},
    ]
    rows, _, _ = read_all(write_jsonl(tmp_path / "alpaca.jsonl", data))
    assert rows[S.PROMPT].to_list() == ["Translate\n\nHallo", "Say hi", "Say yo"]
    assert rows[S.RESPONSE].to_list() == ["Hello", "hi", "yo"]
    assert not {"instruction", "input", "output"} & set(rows.columns)


@pytest.mark.parametrize(
    ("prompt_key", "response_key"), [("prompt", "completion"), ("prompt", "response"), ("question", "answer")]
)
def test_pair_shapes(tmp_path, prompt_key, response_key):
    path = write_jsonl(tmp_path / "p.jsonl", [{prompt_key: "p", response_key: "r", "extra": 3}])
    rows, _, _ = read_all(path)
    assert rows.select(S.PROMPT, S.RESPONSE, "extra").to_dicts() == [
        {"prompt": "p", "response": "r", "extra": 3}
    ]


def test_dolly_shape_appends_context(tmp_path):
    data = [{"instruction": "Summarise", "context": "Long text.", "response": "Short.", "category": "sum"}]
    rows, _, _ = read_all(write_jsonl(tmp_path / "dolly.jsonl", data))
    assert rows.select(S.PROMPT, S.RESPONSE, "category").rows() == [
        ("Summarise\n\nLong text.", "Short.", "sum")
    ]


def test_text_shape(tmp_path):
    rows, _, _ = read_all(write_jsonl(tmp_path / "t.jsonl", [{"text": "raw domain text"}]))
    assert rows[S.TEXT].to_list() == ["raw domain text"]


def test_explicit_mapping_wins(tmp_path):
    data = [{"q": "why?", "a": "because", "text": "not this", "source": "web"}]
    rows, _, _ = read_all(write_jsonl(tmp_path / "x.jsonl", data), columns={"prompt": "q", "response": "a"})
    assert rows.select(S.PROMPT, S.RESPONSE).to_dicts() == [{"prompt": "why?", "response": "because"}]
    assert rows["orig_text"].to_list() == ["not this"]
    assert rows["orig_source"].to_list() == ["web"]
    assert rows[S.SOURCE].to_list() == [f"{tmp_path.name}/x.jsonl"]


def test_explicit_mapping_to_missing_column_names_it(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"q": "a", "a": "b"}])
    message = read_error(path, columns={"prompt": "question", "response": "a"})
    assert "column `question` (columns.prompt) not found" in message
    assert "found: q, a" in message


def test_no_content_columns_error_says_what_to_set(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"foo": "1", "bar": "2"}])
    message = read_error(path)
    assert f"no content columns in {path} (found: foo, bar)" in message
    assert 'set [curate.read] columns = { prompt = "foo", response = "bar" } in assay.toml' in message


def test_read_config_validation():
    with pytest.raises(ValidationError, match="unknown key `instruction`"):
        ReadConfig(columns={"instruction": "x"})
    with pytest.raises(ValidationError, match="mixes content shapes"):
        ReadConfig(columns={"prompt": "a", "text": "b"})
    with pytest.raises(ValidationError):
        ReadConfig(chunk_size=10)
    with pytest.raises(ValidationError):
        ReadConfig(chunk_rows=0)
    assert all(f.description for f in ReadConfig.model_fields.values())


# --------------------------------------------------------------------------- bad JSON Lines input


def test_malformed_line_quarantined_with_physical_line(tmp_path):
    path = write_lines(
        tmp_path / "x.jsonl",
        [
            '{"prompt": "a", "response": "b"}',
            "",
            "   ",
            '{"prompt": "c", ',
            '{"prompt": "d", "response": "e"}',
        ],
    )
    rows, quarantine, _ = read_all(path)
    assert rows[S.SOURCE_LINE].to_list() == [1, 5]
    assert quarantine.schema == S.QUARANTINE_SCHEMA
    (bad,) = quarantine.to_dicts()
    assert bad["source_line"] == 4
    assert bad["error"].startswith("invalid JSON:") and "column" in bad["error"]
    assert bad["raw"] == '{"prompt": "c", '


def test_non_object_lines_quarantined(tmp_path):
    lines = ['{"text": "ok"}', "[1, 2]", "42", '"s"', "null"]
    _, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines))
    assert quarantine["source_line"].to_list() == [2, 3, 4, 5]
    assert quarantine["error"].to_list() == [
        "expected a JSON object, found array",
        "expected a JSON object, found number",
        "expected a JSON object, found string",
        "expected a JSON object, found null",
    ]


def test_invalid_utf8_line_quarantined_rest_continues(tmp_path):
    lines = ['{"text": "a"}', b'{"text": "caf\xe9"}', '{"text": "b"}']
    rows, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines))
    assert rows[S.TEXT].to_list() == ["a", "b"]
    (bad,) = quarantine.to_dicts()
    assert bad["source_line"] == 2
    assert bad["error"] == "invalid UTF-8 at byte 14"
    assert bad["raw"] == '{"text": "caf\\xe9"}'


@pytest.mark.parametrize("chunk_rows", [1, 100])  # alone: polars types each row; together: Python does
def test_bad_content_values_quarantined_with_field_name(tmp_path, chunk_rows):
    lines = [
        '{"prompt": "ok", "response": "fine"}',
        '{"prompt": null, "response": "r"}',
        '{"response": "r"}',
        '{"prompt": {"nested": 1}, "response": "r"}',
        '{"prompt": ["a"], "response": "r"}',
        '{"prompt": true, "response": "r"}',
        '{"prompt": 12, "response": 3.5}',
    ]
    rows, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines), chunk_rows=chunk_rows)
    assert rows.select(S.SOURCE_LINE, S.PROMPT, S.RESPONSE).rows() == [(1, "ok", "fine"), (7, "12", "3.5")]
    assert dict(zip(quarantine["source_line"], quarantine["error"], strict=True)) == {
        2: "field `prompt` is missing or null",
        3: "field `prompt` is missing or null",
        4: "field `prompt` is not text (found object)",
        5: "field `prompt` is not text (found array)",
        6: "field `prompt` is not text (found boolean)",
    }
    assert quarantine["raw"][2] == lines[3]


def test_objects_polars_turns_into_text_are_caught(tmp_path):
    # polars types this column as String and renders the object as '{"a": 1}'; genuine text
    # that merely looks like JSON must stay
    lines = [
        '{"text": "plain"}',
        '{"text": {"a": 1}}',
        '{"text": "{not json"}',
        '{"text": "[1]"}',
        '{"text": true}',
        '{"text": "true"}',
    ]
    rows, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines))
    assert rows[S.TEXT].to_list() == ["plain", "{not json", "[1]", "true"]
    assert quarantine.select("source_line", "error").rows() == [
        (2, "field `text` is not text (found object)"),
        (5, "field `text` is not text (found boolean)"),
    ]


def test_whole_column_of_objects_is_quarantined(tmp_path):
    lines = ['{"text": {"a": 1}}', '{"text": {"a": 2}}']
    rows, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines))
    assert rows.is_empty() and rows.schema[S.TEXT] == pl.String
    assert quarantine["error"].to_list() == ["field `text` is not text (found object)"] * 2


@pytest.mark.parametrize("chunk_rows", [1, 100])
def test_bad_messages_quarantined(tmp_path, chunk_rows):
    data = [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"messages": []},
        {"messages": [{"role": "user", "content": None}]},
        {"messages": "not a list"},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    ]
    rows, quarantine, _ = read_all(write_jsonl(tmp_path / "x.jsonl", data), chunk_rows=chunk_rows)
    assert rows[S.SOURCE_LINE].to_list() == [1]
    errors = dict(zip(quarantine["source_line"], quarantine["error"], strict=True))
    assert errors[2] == "field `messages` is empty"
    assert errors[3] == "field `messages` has a message with a null role or content"
    assert errors[4].startswith("field `messages` is not valid JSON")
    assert errors[5] == "field `messages` has a message whose content is not text (found array)"


def test_type_conflict_between_chunks_keeps_canonical_dtypes(tmp_path):
    data = [{"prompt": i, "response": "r", "score": i} for i in range(3)]
    data += [{"prompt": "p", "response": "r", "score": "high"} for _ in range(3)]
    rows, _, chunks = read_all(write_jsonl(tmp_path / "x.jsonl", data), chunk_rows=3)
    assert [c.rows.schema["score"] for c in chunks] == [pl.Int64, pl.String]
    assert all(c.rows.schema[S.PROMPT] == pl.String for c in chunks)
    assert rows[S.PROMPT].to_list() == ["0", "1", "2", "p", "p", "p"]
    assert rows["score"].to_list() == ["0", "1", "2", "high", "high", "high"]


def test_block_polars_cannot_type_falls_back(tmp_path):
    # a struct and a list in one column, and NaN: polars refuses the block, json does not
    lines = ['{"text": "a", "meta": {"k": 1}}', '{"text": "b", "meta": [1, 2]}', '{"text": "c", "x": NaN}']
    rows, quarantine, _ = read_all(write_lines(tmp_path / "x.jsonl", lines))
    assert rows[S.TEXT].to_list() == ["a", "b", "c"]
    assert quarantine.is_empty()


def test_gzip_jsonl(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"text": "a"}\n{oops\n{"text": "b"}\n')
    rows, quarantine, _ = read_all(path)
    assert rows[S.TEXT].to_list() == ["a", "b"]
    assert quarantine["source_line"].to_list() == [2]


def test_corrupt_gzip_is_input_error(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"not gzip at all\n")
    assert f"cannot read {path}" in read_error(path)


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n{"text": "b"}\r\n')
    rows, _, _ = read_all(path)
    assert rows[S.TEXT].to_list() == ["a", "b"]


def test_chunking_35_rows_by_10(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": f"row {i}"} for i in range(35)])
    _, _, chunks = read_all(path, chunk_rows=10)
    assert [c.rows.height for c in chunks] == [10, 10, 10, 5]
    assert chunks[3].rows[S.SOURCE_LINE].to_list() == [31, 32, 33, 34, 35]
    assert all(c.quarantine.schema == S.QUARANTINE_SCHEMA for c in chunks)


def test_20mb_single_line(tmp_path):
    big = "word " * (4 * 2**20)
    path = write_lines(tmp_path / "x.jsonl", [json.dumps({"text": big}), '{"text": "small"}'])
    rows, _, _ = read_all(path, chunk_bytes=2**20)
    assert rows[S.TEXT].str.len_bytes().to_list() == [len(big), 5]
    assert rows[S.SOURCE_LINE].to_list() == [1, 2]


def test_empty_and_blank_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert f"{empty} has no rows" in read_error(empty)
    blank = write_lines(tmp_path / "blank.jsonl", ["", "  "])
    assert f"{blank} has no rows" in read_error(blank)


def test_read_failure_is_input_error(tmp_path, monkeypatch):
    from assay.curate.readers import jsonl

    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}])

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(jsonl, "open", denied, raising=False)
    assert f"cannot read {path}: Permission denied" in read_error(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    path.chmod(0)
    assert f"cannot read {path}" in read_error(path)


# --------------------------------------------------------------------------- JSON arrays


def test_json_array(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps([{"prompt": "p1", "response": "r1"}, 5, {"prompt": "p3", "response": "r3"}]))
    rows, quarantine, _ = read_all(path)
    assert rows[S.SOURCE_LINE].to_list() == [1, 3]
    assert quarantine.select("source_line", "error", "raw").rows() == [
        (2, "expected a JSON object, found number", "5")
    ]


def test_json_array_gz_and_chunks(tmp_path):
    path = tmp_path / "x.json.gz"
    with gzip.open(path, "wt") as fh:
        json.dump([{"text": str(i)} for i in range(5)], fh)
    _, _, chunks = read_all(path, chunk_rows=2)
    assert [c.rows[S.SOURCE_LINE].to_list() for c in chunks] == [[1, 2], [3, 4], [5]]


def test_malformed_json_array_names_line_and_column(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": }\n]\n')
    message = read_error(path)
    assert f"invalid JSON in {path} at line 3, column 12" in message


def test_json_single_object_and_empty_array(tmp_path):
    obj = tmp_path / "obj.json"
    obj.write_text('{\n "data": [1]\n}')
    assert "holds one JSON object, not rows (keys: data)" in read_error(obj)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert "has no rows" in read_error(empty)


def test_json_file_holding_json_lines(tmp_path):
    path = write_lines(tmp_path / "x.json", ['{"text": "a"}', "{bad", '{"text": "b"}'])
    rows, quarantine, _ = read_all(path)
    assert rows[S.SOURCE_LINE].to_list() == [1, 3]
    assert quarantine["source_line"].to_list() == [2]


# --------------------------------------------------------------------------- CSV / TSV


def test_csv_wrong_field_count_has_physical_start_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('prompt,response,tag\n"multi\nline",r1,t\n\np2,r2,t,extra\np3,r3,t\n')
    rows, quarantine, _ = read_all(path)
    assert rows.select(S.SOURCE_LINE, S.PROMPT, "tag").rows() == [(2, "multi\nline", "t"), (6, "p3", "t")]
    assert quarantine.select("source_line", "error", "raw").rows() == [
        (5, "expected 3 fields, found 4", "p2,r2,t,extra")
    ]


def test_csv_values_stay_strings_and_utf8_errors_quarantined(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"question,answer,n\nq1,a1,1\nq\xff2,a2,2\nq3,a3,3\n")
    rows, quarantine, _ = read_all(path)
    assert rows.schema["n"] == pl.String
    assert rows[S.PROMPT].to_list() == ["q1", "q3"]
    assert quarantine.select("source_line", "error", "raw").rows() == [
        (3, "invalid UTF-8 at byte 2", "q\\xff2,a2,2")
    ]


def test_tsv_and_custom_delimiter(tmp_path):
    tsv = tmp_path / "x.tsv"
    tsv.write_text("text\tlang\nhello, world\ten\n")
    rows, _, _ = read_all(tsv)
    assert rows.select(S.TEXT, "lang").rows() == [("hello, world", "en")]
    semi = tmp_path / "y.csv"
    semi.write_text("text;lang\nhi;en\n")
    rows, _, _ = read_all(semi, csv_delimiter=";")
    assert rows.select(S.TEXT, "lang").rows() == [("hi", "en")]


def test_csv_messages_as_json_text(tmp_path):
    path = tmp_path / "chat.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["messages"])
        writer.writerow([json.dumps([{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}])])
        writer.writerow(["not json"])
    rows, quarantine, _ = read_all(path)
    assert rows[S.MESSAGES].to_list() == [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    ]
    assert quarantine["source_line"].to_list() == [3]
    assert quarantine["error"][0].startswith("field `messages` is not valid JSON")


def test_csv_header_only_and_empty(tmp_path):
    header_only = tmp_path / "h.csv"
    header_only.write_text("prompt,response\n")
    assert "has no rows" in read_error(header_only)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert "has no rows" in read_error(empty)


# --------------------------------------------------------------------------- parquet and Hugging Face


def test_parquet_streamed_in_chunks(tmp_path):
    table = pa.table(
        {"instruction": [f"i{n}" for n in range(25)], "output": ["o"] * 25, "k": list(range(25))}
    )
    path = tmp_path / "x.parquet"
    pq.write_table(table, path, row_group_size=7)
    rows, _, chunks = read_all(path, chunk_rows=10)
    assert [c.rows.height for c in chunks] == [10, 10, 5]
    assert rows[S.SOURCE_LINE].to_list() == list(range(1, 26))
    assert rows["k"].to_list() == list(range(25))


def test_parquet_null_content_quarantined_as_json(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["a", None], "k": [1, 2]}), path)
    rows, quarantine, _ = read_all(path)
    assert rows[S.TEXT].to_list() == ["a"]
    assert quarantine.select("source_line", "error", "raw").rows() == [
        (2, "field `text` is missing or null", '{"text": null, "k": 2}')
    ]


def test_zero_row_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    assert "has no rows" in read_error(path)


def test_hf_dataset_and_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"question": [f"q{i}" for i in range(12)], "answer": ["a"] * 12})
    ds.save_to_disk(str(tmp_path / "single"))
    (f,) = expand_inputs([tmp_path / "single"])
    assert (f.format, f.source) == ("hf", f"{tmp_path.name}/single")
    chunks = list(read_chunks(f, ReadConfig(chunk_rows=5)))
    assert [c.rows.height for c in chunks] == [5, 5, 2]
    assert chunks[2].rows[S.SOURCE_LINE].to_list() == [11, 12]

    dd = datasets.DatasetDict({"train": ds, "test": ds.select(range(3))})
    dd.save_to_disk(str(tmp_path / "dd"))
    files = expand_inputs([tmp_path / "dd"])
    assert [(f.source, f.format) for f in files] == [("dd/train", "hf"), ("dd/test", "hf")]
    test_rows = pl.concat([c.rows for c in read_chunks(files[1], ReadConfig())])
    assert test_rows[S.PROMPT].to_list() == ["q0", "q1", "q2"]
    assert file_fingerprint(files[1])["bytes"] > 0


# --------------------------------------------------------------------------- expanding inputs


def test_folder_is_recursive_sorted_and_skips_other_files(tmp_path):
    root = tmp_path / "data"
    write_jsonl(root / "b.jsonl", [{"text": "b"}])
    write_jsonl(root / "a" / "z.ndjson", [{"text": "z"}])
    (root / "a" / "c.csv").write_text("text\nc\n")
    (root / "README.md").write_text("not data")
    write_jsonl(root / ".hidden" / "h.jsonl", [{"text": "h"}])
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["hf"]}).save_to_disk(str(root / "hfset"))
    files = expand_inputs([root])
    assert [(f.source, f.format) for f in files] == [
        ("data/a/c.csv", "csv"),
        ("data/a/z.ndjson", "jsonl"),
        ("data/b.jsonl", "jsonl"),
        ("data/hfset", "hf"),
    ]


def test_glob_and_dedup(tmp_path):
    write_jsonl(tmp_path / "d" / "one.jsonl", [{"text": "1"}])
    write_jsonl(tmp_path / "d" / "two.jsonl", [{"text": "2"}])
    (tmp_path / "d" / "notes.txt").write_text("x")
    files = expand_inputs([str(tmp_path / "d" / "*"), tmp_path / "d" / "one.jsonl"])
    assert [f.source for f in files] == ["d/one.jsonl", "d/two.jsonl"]


def test_expand_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([tmp_path / "missing.jsonl"])
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_dir" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no supported files in") as info:
        expand_inputs([tmp_path / "empty_dir"])
    assert ".jsonl" in str(info.value) and ".parquet" in str(info.value)
    with pytest.raises(InputError, match="no files match"):
        expand_inputs([str(tmp_path / "*.parquet")])
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported file type") as info:
        expand_inputs([tmp_path / "data.xlsx"])
    assert ".csv" in str(info.value)


def test_same_source_name_twice_is_refused(tmp_path):
    a = write_jsonl(tmp_path / "a" / "x" / "t.jsonl", [{"text": "1"}])
    b = write_jsonl(tmp_path / "b" / "x" / "t.jsonl", [{"text": "2"}])
    with pytest.raises(InputError, match="would both be named x/t.jsonl"):
        expand_inputs([a, b])


def test_file_fingerprint(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    (f,) = expand_inputs([path])
    fp = file_fingerprint(f)
    assert fp == {
        "path": str(path),
        "source": f"{tmp_path.name}/x.jsonl",
        "format": "jsonl",
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "a.arrow").write_bytes(b"1")
    first = file_fingerprint(InputFile(folder, "t/hf", "hf"))
    (folder / "a.arrow").write_bytes(b"2")
    assert file_fingerprint(InputFile(folder, "t/hf", "hf"))["sha256"] != first["sha256"]


# --------------------------------------------------------------------------- property: no row is lost

GOOD = st.builds(
    lambda p, r: json.dumps({"prompt": p, "response": r, "n": 1}),
    st.text(max_size=20),
    st.text(max_size=20),
)
BAD_JSON = st.sampled_from(['{"prompt": ', "{bad}", '{"prompt": "a",}', "nope"])
NOT_OBJECT = st.sampled_from(["[1, 2]", "3", '"str"', "null", "true"])
BAD_CONTENT = st.sampled_from(
    ['{"prompt": null, "response": "r"}', '{"response": "r"}', '{"prompt": {"a": 1}, "response": "r"}']
)
BAD_UTF8 = st.sampled_from([b'{"prompt": "\xff", "response": "r"}', b"\xc3\x28"])
BLANK = st.sampled_from(["", "  ", "\t"])
LINE = st.one_of(
    st.tuples(st.just("good"), GOOD),
    st.tuples(st.just("bad"), st.one_of(BAD_JSON, NOT_OBJECT, BAD_CONTENT, BAD_UTF8)),
    st.tuples(st.just("blank"), BLANK),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=40), chunk_rows=st.integers(1, 12))
def test_no_line_is_lost(tmp_path, lines, chunk_rows):
    # the content shape is decided from the first chunk's columns, so the file opens with a good row
    lines = [("good", json.dumps({"prompt": "first", "response": "r"})), *lines]
    path = write_lines(tmp_path / "prop.jsonl", [text for _, text in lines])
    rows, quarantine, _ = read_all(path, chunk_rows=chunk_rows)
    expected_good = [i for i, (kind, _) in enumerate(lines, 1) if kind == "good"]
    expected_bad = [i for i, (kind, _) in enumerate(lines, 1) if kind == "bad"]
    assert rows.height + quarantine.height == len(expected_good) + len(expected_bad)
    assert rows[S.SOURCE_LINE].to_list() == expected_good
    assert quarantine["source_line"].to_list() == expected_bad
    if expected_good:
        originals = [json.loads(lines[i - 1][1]) for i in expected_good]
        assert rows[S.PROMPT].to_list() == [o["prompt"] for o in originals]


# --------------------------------------------------------------------------- a real file


@pytest.mark.skipif(not GSM8K.exists(), reason="shared gsm8k data not present")
def test_gsm8k_train(capsys):
    (f,) = expand_inputs([GSM8K])
    start = time.perf_counter()
    chunks = list(read_chunks(f, ReadConfig()))
    seconds = time.perf_counter() - start
    rows = pl.concat([c.rows for c in chunks])
    assert rows.height == 7473
    assert rows.columns == [S.SOURCE, S.SOURCE_LINE, S.PROMPT, S.RESPONSE]
    assert rows[S.SOURCE][0] == "gsm8k/train.jsonl"
    assert rows[S.SOURCE_LINE].to_list() == list(range(1, 7474))
    assert all(c.quarantine.is_empty() for c in chunks)
    with capsys.disabled():
        print(f"\ngsm8k/train.jsonl: {rows.height / seconds:,.0f} rows/s ({seconds * 1000:.0f} ms)")
