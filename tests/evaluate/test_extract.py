"""Answer extraction: GSM8K-style final answers, numbers as people write them, regexes, config errors."""

from __future__ import annotations

import doctest
import json

import pytest
from pydantic import ValidationError

from assay.evaluate import extract
from assay.evaluate.extract import ExtractConfig, extract_answer, extract_answers, normalize_number
from tests.conftest import SHARED_DATA

LAST = ExtractConfig(kind="last_number")
GSM8K_TEST = SHARED_DATA / "gsm8k" / "test.jsonl"


def test_docstring_examples_hold():
    assert doctest.testmod(extract).failed == 0


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
        ("#### 42", "42"),
        ("The total is $1,234.50", "1234.5"),
        ("So she makes 18 dollars a day. The answer is 18.", "18"),
        ("The change is -3.", "-3"),
        ("5-3=2", "2"),
        ("1,000,000 people came", "1000000"),
        ("It costs .5 dollars", "0.5"),
        ("We need 3.0 cups, not 2.50", "2.5"),
        ("items 1,2,3", "3"),
        ("H2O", ""),
        ("no number here", ""),
    ],
)
def test_last_number(text, answer):
    assert extract_answer(text, LAST) == answer


@pytest.mark.parametrize(
    ("raw", "plain"), [("1,234.50", "1234.5"), ("-0.0", "0"), ("007", "7"), ("42.", "42"), ("-12", "-12"), ("", "")]
)
def test_normalize_number(raw, plain):
    assert normalize_number(raw) == plain


def test_regex_takes_its_group_and_counts_misses():
    config = ExtractConfig(kind="regex", pattern=r"(?i)answer:\s*(\w+)")
    got = extract_answers(["Answer: Paris", "I think the answer: rome.", "no idea"], config)
    assert got.answers == ["Paris", "rome", ""]
    assert got.missing == [2]


def test_whole_and_first_line():
    assert extract_answer("  Paris \n", ExtractConfig()) == "Paris"
    first = ExtractConfig(kind="first_line")
    assert extract_answer("\n \n  Paris.\nBecause it is the capital.", first) == "Paris."
    assert extract_answers(["", " \n"], first).missing == [0, 1]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "regex"}, "needs a `pattern`"),
        ({"kind": "regex", "pattern": "answer"}, "has 0 groups"),
        ({"kind": "regex", "pattern": "(a)(b)"}, "has 2 groups"),
        ({"kind": "regex", "pattern": "(unclosed"}, "not a valid regular expression"),
        ({"kind": "whole", "pattern": "(x)"}, "only used when"),
        ({"kind": "last_digit"}, "last_number"),
        ({"kind": "whole", "strip": True}, "Extra inputs"),
    ],
)
def test_bad_config_is_refused_with_the_reason(settings, message):
    with pytest.raises(ValidationError, match=message):
        ExtractConfig(**settings)


def test_every_setting_is_described():
    assert all(field.description for field in ExtractConfig.model_fields.values())


@pytest.mark.skipif(not GSM8K_TEST.exists(), reason="GSM8K test file not present in shared data")
def test_last_number_finds_every_gsm8k_final_answer():
    rows = [json.loads(line) for line in GSM8K_TEST.read_text(encoding="utf-8").splitlines() if line.strip()]
    marked = extract_answers([r["answer"] for r in rows], ExtractConfig(kind="regex", pattern=r"#### (.+)"))
    last = extract_answers([r["answer"] for r in rows], LAST)
    assert marked.missing == [] and last.missing == []
    assert any("," in a for a in marked.answers)  # the file has thousands separators to normalise
    assert last.answers == [normalize_number(a) for a in marked.answers]
