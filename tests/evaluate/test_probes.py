"""The probe sets assay ships: valid in their formats, of the stated sizes, balanced and free of duplicates."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest

from assay.evaluate import bbq
from assay.evaluate.formats import READERS

PROBES = Path(str(files("assay.evaluate") / "probes"))
CROWS_BIAS_TYPES = {"race-color", "gender", "socioeconomic", "nationality", "religion", "age", "sexual-orientation",
                    "physical-appearance", "disability"}
FILES = {"crows_pairs": "crows_pairs.csv", "bbq": "bbq.jsonl", "counterfactual": "counterfactual.jsonl",
         "text": "general_text.jsonl", "multiple_choice": "general_mc.jsonl"}


def read(kind: str) -> list:
    return READERS[kind](PROBES / FILES[kind])


def shares(values) -> dict:
    counts = Counter(values)
    return {k: v / sum(counts.values()) for k, v in counts.items()}


def test_every_probe_file_is_documented_in_the_readme() -> None:
    readme = (PROBES / "README.md").read_text(encoding="utf-8")
    assert "Apache-2.0" in readme
    for name in FILES.values():
        assert f"`{name}`" in readme
    assert sorted(p.name for p in PROBES.iterdir() if p.name != "README.md") == sorted(FILES.values())


def test_crows_pairs_use_the_published_header_cover_every_bias_type_in_both_directions() -> None:
    first_line = (PROBES / "crows_pairs.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == ",sent_more,sent_less,stereo_antistereo,bias_type,annotations,anon_writer,anon_annotators"
    pairs = read("crows_pairs")
    assert 180 <= len(pairs) <= 260
    assert {p.bias_type for p in pairs} == CROWS_BIAS_TYPES
    for bias_type in CROWS_BIAS_TYPES:
        directions = Counter(p.stereo_antistereo for p in pairs if p.bias_type == bias_type)
        assert sum(directions.values()) >= 15 and directions["stereo"] > 0 and directions["antistereo"] > 0, bias_type
    assert 0.2 <= shares(p.stereo_antistereo for p in pairs)["antistereo"] <= 0.5


def test_crows_pairs_are_minimal_pairs_without_duplicates() -> None:
    pairs = read("crows_pairs")
    sentences = [s for p in pairs for s in (p.sent_more, p.sent_less)]
    assert len(set(sentences)) == len(sentences)
    for pair in pairs:
        more, less = pair.sent_more.split(), pair.sent_less.split()
        changes = [op for op in difflib.SequenceMatcher(a=more, b=less).get_opcodes() if op[0] != "equal"]
        assert len(changes) == 1, pair                                  # one swapped group term, the rest identical
        _, i1, i2, j1, j2 = changes[0]
        assert max(i2 - i1, j2 - j1) <= 4, pair


def test_bbq_scenarios_come_in_all_four_versions_with_consistent_answers() -> None:
    items = read("bbq")
    assert 180 <= len(items) <= 260
    scenarios: dict[tuple[str, str], list] = {}
    for item in items:
        scenarios.setdefault((item.category, item.question_index), []).append(item)
    for key, versions in scenarios.items():
        assert sorted((v.context_condition, v.question_polarity) for v in versions) == [
            ("ambig", "neg"), ("ambig", "nonneg"), ("disambig", "neg"), ("disambig", "nonneg")], key
        assert len({v.answers for v in versions}) == 1, key
        ambiguous = next(v.context for v in versions if v.ambiguous)
        assert all(v.context.startswith(ambiguous) for v in versions), key   # the disambiguated context extends it
    assert len({(i.context, i.question) for i in items}) == len(items)


def test_bbq_labels_and_biased_answers_are_balanced_and_well_defined() -> None:
    items = read("bbq")
    for item in items:
        assert (item.label == item.unknown_index) == item.ambiguous
        assert len(bbq.biased_answers(item)) == 1, item.example_id
    assert max(shares(i.label for i in items).values()) <= 0.4
    assert max(shares(bbq.biased_answers(i)[0] for i in items).values()) <= 0.4
    categories = Counter(i.category for i in items)
    assert len(categories) >= 8 and min(categories.values()) >= 16
    # Disambiguated contexts point at the stereotyped answer in about half of the negative questions.
    aligned = [i.label in bbq.biased_answers(i) for i in items if not i.ambiguous and i.question_polarity == "neg"]
    assert 0.4 <= sum(aligned) / len(aligned) <= 0.6


def test_bbq_biased_answers_agree_with_lm_eval() -> None:
    datasets = pytest.importorskip("datasets")
    utils = pytest.importorskip("lm_eval.tasks.bbq.utils")
    rows = [json.loads(line) for line in (PROBES / "bbq.jsonl").read_text(encoding="utf-8").splitlines()]
    docs = utils.process_docs(datasets.Dataset.from_list(rows))
    for item, doc in zip(read("bbq"), docs, strict=True):
        assert [item.answers[i] for i in bbq.biased_answers(item)] == doc["biased_answers"]
        assert utils.doc_to_choice(doc)[2:] == list(utils.UNKNOWN_RESPONSES)   # the unknown answer is one lm-eval knows


def test_counterfactual_templates_cover_the_groups_without_duplicates() -> None:
    templates = read("counterfactual")
    assert 50 <= len(templates) <= 80
    per_group = Counter(group for t in templates for group, _ in t.groups)
    assert set(per_group) >= {"gender", "age", "religion", "nationality", "race_ethnicity", "disability", "sexual_orientation", "ses"}
    assert min(per_group.values()) >= 10
    assert len({t.template for t in templates}) == len(templates)
    assert len({t.id for t in templates}) == len(templates)
    assert len({t.category for t in templates}) >= 5


def test_general_text_is_a_few_hundred_short_distinct_paragraphs() -> None:
    texts = read("text")
    assert 140 <= len(texts) <= 200
    assert len({t.text for t in texts}) == len(texts)
    assert all(40 <= len(t.text.split()) <= 120 for t in texts)
    categories = Counter(t.category for t in texts)
    assert set(categories) == {"encyclopaedic", "how-to", "narrative"} and min(categories.values()) >= 40


def test_general_multiple_choice_has_four_choices_and_balanced_answer_positions() -> None:
    items = read("multiple_choice")
    assert 140 <= len(items) <= 200
    assert all(len(i.choices) == 4 and len(set(i.choices)) == 4 for i in items)
    positions = Counter(i.answer for i in items)
    assert set(positions) == {0, 1, 2, 3} and max(positions.values()) - min(positions.values()) <= 1
    assert len({i.question for i in items}) == len(items)
    assert len({i.category for i in items}) >= 5
