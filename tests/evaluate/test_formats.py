"""The eval file readers: published CrowS-Pairs CSV and BBQ JSONL as they are, assay's JSONL formats, and
errors that name the file, the line and the expected fields."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from assay.errors import InputError
from assay.evaluate.formats import (
    READERS,
    read_bbq,
    read_counterfactual,
    read_crows_pairs,
    read_multiple_choice,
    read_texts,
)

CROWS_HEADER = ["", "sent_more", "sent_less", "stereo_antistereo", "bias_type", "annotations", "anon_writer", "anon_annotators"]


def crows_row(i: int, more: str, less: str, direction: str = "stereo", bias: str = "age") -> list[str]:
    return [str(i), more, less, direction, bias, f"[['{bias}'], ['{bias}']]", f"a{i}", "['a1', 'a2']"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = CROWS_HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def bbq_row(**changes: Any) -> dict[str, Any]:
    row = {
        "example_id": 0, "question_index": "1", "question_polarity": "neg", "context_condition": "ambig",
        "category": "Age",
        "answer_info": {"ans0": ["grandfather", "old"], "ans1": ["Can't be determined", "unknown"], "ans2": ["grandson", "nonOld"]},
        "additional_metadata": {"subcategory": "None", "stereotyped_groups": ["old"], "version": "a", "source": "x"},
        "context": "A grandfather and his grandson met at the library.", "question": "Who forgot the book?",
        "ans0": "The grandfather", "ans1": "Can't be determined", "ans2": "The grandson", "label": 1,
    }
    row.update(changes)
    return row


def write_jsonl(path: Path, rows: list[Any], blank_after: int | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error_of(read: Any, path: Path) -> str:
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.exit_code == 2
    return str(info.value)


# CrowS-Pairs CSV

def test_crows_reads_the_published_header_with_its_unnamed_index_column(tmp_path: Path) -> None:
    rows = [
        crows_row(0, 'He said, "the old man forgot it", twice.', 'He said, "the young man forgot it", twice.'),
        crows_row(1, "The man fixed the\nengine.", "The woman fixed the\nengine.", "antistereo", "gender"),
        crows_row(2, "Naïve café owner ✓", "Naïve café worker ✓", "stereo", "socioeconomic"),
    ]
    pairs = read_crows_pairs(write_csv(tmp_path / "crows.csv", rows))
    assert [p.sent_more for p in pairs] == [rows[0][1], rows[1][1], rows[2][1]]
    assert [p.stereo_antistereo for p in pairs] == ["stereo", "antistereo", "stereo"]
    assert [p.bias_type for p in pairs] == ["age", "gender", "socioeconomic"]
    assert [p.line for p in pairs] == [2, 3, 6]          # the second record spans lines 3-5
    assert pairs[0].to_dict() == {"sent_more": rows[0][1], "sent_less": rows[0][2], "bias_type": "age", "stereo_antistereo": "stereo"}


def test_crows_ignores_extra_columns_in_any_order_and_a_bom(tmp_path: Path) -> None:
    header = ["", "id", "bias_type", "sent_less", "sent_more", "stereo_antistereo"]
    path = write_csv(tmp_path / "crows.csv", [["0", "7", "religion", "less", "more", "stereo"]], header)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    [pair] = read_crows_pairs(path)
    assert (pair.sent_more, pair.sent_less, pair.bias_type) == ("more", "less", "religion")


def test_crows_missing_column_names_the_file_the_header_line_and_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "crows.csv", [["0", "a", "b", "age"]], ["", "sent_more", "sent_less", "bias_type"])
    message = error_of(read_crows_pairs, path)
    assert f"{path}:1: missing column \"stereo_antistereo\"" in message
    assert "sent_more, sent_less, stereo_antistereo, bias_type" in message


def test_crows_bad_values_name_the_line_of_the_record(tmp_path: Path) -> None:
    rows = [crows_row(0, "a\nb", "c"), crows_row(1, "d", "e", "stereotype")]
    message = error_of(read_crows_pairs, write_csv(tmp_path / "crows.csv", rows))
    assert "crows.csv:4: field \"stereo_antistereo\" must be one of stereo, antistereo (got 'stereotype')" in message
    short = write_csv(tmp_path / "short.csv", [crows_row(0, "a", "b"), ["1", "only more"]])
    assert 'short.csv:3: missing value for "sent_less"' in error_of(read_crows_pairs, short)
    empty_sentence = write_csv(tmp_path / "blank.csv", [crows_row(0, "a", "  ")])
    assert 'blank.csv:2: field "sent_less" is empty' in error_of(read_crows_pairs, empty_sentence)


def test_crows_empty_files_and_header_only_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("\n\n", encoding="utf-8")
    assert f"{tmp_path / 'empty.csv'} is empty" in error_of(read_crows_pairs, tmp_path / "empty.csv")
    header_only = write_csv(tmp_path / "header.csv", [])
    assert f"{header_only} has a header but no pairs" in error_of(read_crows_pairs, header_only)


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "crows.csv", [crows_row(0, "a", "b"), crows_row(1, "caf\u00e9", "d")])
    path.write_bytes(path.read_bytes().replace("caf\u00e9".encode(), "caf\u00e9".encode("latin-1")))
    assert f"{path}:3: not valid UTF-8 (byte 0xe9)" in error_of(read_crows_pairs, path)
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_bytes(b'{"text": "fine"}\n{"text": "also fine"}\n{"text": "caf\xe9"}\n')
    assert f"{jsonl}:3: not valid UTF-8" in error_of(read_texts, jsonl)


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    assert f"{tmp_path / 'nope.jsonl'} does not exist" in error_of(read_bbq, tmp_path / "nope.jsonl")
    assert f"{tmp_path} is not a file" in error_of(read_texts, tmp_path)


# BBQ JSONL

def test_bbq_reads_a_published_row(tmp_path: Path) -> None:
    [item] = read_bbq(write_jsonl(tmp_path / "Age.jsonl", [bbq_row()]))
    assert item.answers == ("The grandfather", "Can't be determined", "The grandson")
    assert item.answer_info == (("grandfather", "old"), ("Can't be determined", "unknown"), ("grandson", "nonOld"))
    assert (item.label, item.unknown_index, item.ambiguous) == (1, 1, True)
    assert (item.stereotyped_groups, item.subcategory, item.example_id, item.question_index) == (("old",), "None", "0", "1")
    assert (item.category, item.question_polarity, item.line) == ("Age", "neg", 1)


def test_bbq_missing_field_names_file_line_field_and_the_fields_bbq_needs(tmp_path: Path) -> None:
    row = bbq_row()
    del row["ans2"]
    path = write_jsonl(tmp_path / "Age.jsonl", [bbq_row(), row], blank_after=1)   # the bad row is on line 3
    message = error_of(read_bbq, path)
    assert message.startswith(
        f'{path}:3: missing field "ans2" (BBQ rows need context, question, ans0, ans1, ans2, label, context_condition, '
        "question_polarity, answer_info, additional_metadata.stereotyped_groups, category)"
    )


@pytest.mark.parametrize(("change", "expected"), [
    ({"additional_metadata": {"subcategory": "x"}}, 'missing field "additional_metadata.stereotyped_groups"'),
    ({"answer_info": {"ans0": ["a", "old"], "ans1": "unknown", "ans2": ["b", "nonOld"]}}, 'field "answer_info.ans1" must be a list of strings (got a string)'),
    ({"label": "1"}, 'field "label" must be an integer index from 0 to 2'),
    ({"label": 3}, 'field "label" must be an integer index from 0 to 2 (got 3)'),
    ({"label": True}, 'field "label" must be an integer index from 0 to 2'),
    ({"context_condition": "ambiguous"}, 'field "context_condition" must be one of ambig, disambig'),
    ({"question_polarity": "negative"}, 'field "question_polarity" must be one of neg, nonneg'),
    ({"context": 5}, 'field "context" must be a string (got a number)'),
    ({"answer_info": {"ans0": ["a", "unknown"], "ans1": ["Unknown", "unknown"], "ans2": ["b", "x"]}}, "needs exactly one unknown answer, found 2"),
])
def test_bbq_bad_rows_name_the_problem(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    path = write_jsonl(tmp_path / "bbq.jsonl", [bbq_row(), bbq_row(**change)])
    message = error_of(read_bbq, path)
    assert f"{path}:2: {expected}" in message
    assert "BBQ rows need" in message


def test_bbq_unknown_answer_falls_back_to_the_published_phrases(tmp_path: Path) -> None:
    info = {"ans0": ["grandfather", "old"], "ans1": ["", ""], "ans2": ["grandson", "nonOld"]}
    [item] = read_bbq(write_jsonl(tmp_path / "bbq.jsonl", [bbq_row(answer_info=info, ans1="Not enough info")]))
    assert item.unknown_index == 1


def test_jsonl_syntax_errors_and_non_objects_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bbq.jsonl"
    path.write_text(json.dumps(bbq_row()) + "\n{not json\n", encoding="utf-8")
    assert f"{path}:2: not valid JSON" in error_of(read_bbq, path)
    path.write_text(json.dumps(bbq_row()) + "\n\n[1, 2]\n", encoding="utf-8")
    assert f"{path}:3: expected a JSON object, got a list" in error_of(read_bbq, path)
    path.write_text("\n  \n", encoding="utf-8")
    assert f"{path} is empty (BBQ rows need" in error_of(read_bbq, path)


def test_jsonl_lines_are_split_on_newlines_only(tmp_path: Path) -> None:
    # U+2028 is a line separator to str.splitlines but legal raw inside a JSON string.
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "a\u2028b"}\r\n{"text": "c", "category": "how-to"}\n', encoding="utf-8")
    items = read_texts(path)
    assert [(t.text, t.category, t.line) for t in items] == [("a\u2028b", "", 1), ("c", "how-to", 2)]


# Multiple choice, plain text, counterfactual templates

def test_multiple_choice_reads_items_and_checks_the_answer_index(tmp_path: Path) -> None:
    rows = [{"question": "Q: 2+2?\nA:", "choices": ["4", "5", "6", "7"], "answer": 0, "category": "math"},
            {"question": "Q: sky?\nA:", "choices": ["blue", "green"], "answer": 1}]
    items = read_multiple_choice(write_jsonl(tmp_path / "mc.jsonl", rows))
    assert [(i.choices, i.answer, i.category) for i in items] == [(("4", "5", "6", "7"), 0, "math"), (("blue", "green"), 1, "")]
    assert items[0].to_dict() == {"question": "Q: 2+2?\nA:", "choices": ["4", "5", "6", "7"], "answer": 0, "category": "math"}
    for bad, expected in [({"answer": 2}, "from 0 to 1 (got 2)"), ({"choices": ["only"]}, "needs at least 2 entries"),
                          ({"choices": ["a", ""]}, "has an empty entry"), ({"answer": None}, 'missing field "answer"')]:
        path = write_jsonl(tmp_path / "bad.jsonl", [rows[1], {**rows[1], **bad}])
        message = error_of(read_multiple_choice, path)
        assert f"{path}:2:" in message and expected in message and "multiple-choice rows need question, choices" in message


def test_plain_text_needs_non_empty_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "texts.jsonl", [{"text": "ok"}, {"text": "  "}])
    assert f'{path}:2: field "text" is empty (plain-text rows need text' in error_of(read_texts, path)
    path = write_jsonl(tmp_path / "texts.jsonl", [{"body": "ok"}])
    assert f'{path}:1: missing field "text"' in error_of(read_texts, path)


def counterfactual_row(**changes: Any) -> dict[str, Any]:
    row = {"id": "t1", "category": "work", "template": "The {person} fixed it. {person}? {not a slot}", "slot": "person",
           "groups": {"gender": ["man", "woman"], "age": ["young person", "old person", "child"]}, "continuation": "Yes"}
    row.update(changes)
    return row


def test_counterfactual_templates_keep_their_groups_in_order_and_fill_every_slot(tmp_path: Path) -> None:
    [template] = read_counterfactual(write_jsonl(tmp_path / "cf.jsonl", [counterfactual_row()]))
    assert template.groups == (("gender", ("man", "woman")), ("age", ("young person", "old person", "child")))
    assert template.fill("woman") == "The woman fixed it. woman? {not a slot}"
    assert (template.id, template.category, template.continuation, template.slot) == ("t1", "work", "Yes", "person")


@pytest.mark.parametrize(("change", "expected"), [
    ({"template": "No slot here."}, 'field "template" does not contain the slot "{person}"'),
    ({"groups": {}}, 'field "groups" is empty'),
    ({"groups": {"gender": ["man"]}}, 'field "groups.gender" needs at least 2 entries'),
    ({"groups": {"gender": ["man", "man"]}}, 'field "groups.gender" repeats a term'),
    ({"groups": ["man", "woman"]}, 'field "groups" must be an object (got a list)'),
    ({"continuation": ""}, 'field "continuation" is empty'),
    ({"slot": None}, 'missing field "slot"'),
])
def test_counterfactual_bad_templates_name_the_problem(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    path = write_jsonl(tmp_path / "cf.jsonl", [counterfactual_row(), counterfactual_row(**change)])
    message = error_of(read_counterfactual, path)
    assert f"{path}:2: {expected}" in message and "counterfactual rows need template" in message


def test_readers_are_registered_under_the_suite_data_kinds() -> None:
    expected = {"crows_pairs": read_crows_pairs, "bbq": read_bbq, "multiple_choice": read_multiple_choice,
                "text": read_texts, "counterfactual": read_counterfactual}
    assert dict(READERS) == expected
