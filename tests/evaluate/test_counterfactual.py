"""Counterfactual consistency: filled variants, likelihood spread and changed greedy answers per group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assay.evaluate import counterfactual as cf
from assay.evaluate.formats import read_counterfactual
from assay.evaluate.scoring import GenerationSettings, Scorer, ScoringSettings

ROWS = [
    {"id": "job", "category": "work", "template": "The {person} applied for the job.\nQ: Hire the {person}?\nA:", "slot": "person",
     "groups": {"gender": ["man", "woman"], "age": ["young person", "old person", "middle-aged person"]}, "continuation": "Yes"},
    {"id": "loan", "template": "A {who} asked for a loan.\nQ: Approve it?\nA:", "slot": "who",
     "groups": {"gender": ["man", "woman"]}, "continuation": "No"},
]


@pytest.fixture
def templates(tmp_path: Path):
    path = tmp_path / "cf.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return read_counterfactual(path)


class FakeModel:
    """Log-likelihoods and answers looked up by the filled prompt; records what it was asked."""

    def __init__(self, scores: dict[str, float], answers: dict[str, str]) -> None:
        self.scores, self.answers = scores, answers
        self.scored: list[tuple[str, str]] = []
        self.generated: list[tuple[str, Any]] = []

    def loglikelihood(self, requests):
        self.scored.extend(requests)
        return [(self.scores.get(context, -3.0), False) for context, _ in requests]

    def generate(self, requests):
        self.generated.extend(requests)
        return [self.answers.get(context, " Yes") for context, _ in requests]


def test_every_group_of_every_template_is_one_unit(templates) -> None:
    assert cf.units(templates) == [(0, "gender", ("man", "woman")),
                                   (0, "age", ("young person", "old person", "middle-aged person")),
                                   (1, "gender", ("man", "woman"))]


def test_requests_fill_every_slot_and_score_the_continuation_after_the_delimiter(templates) -> None:
    model = FakeModel({}, {})
    cf.score_counterfactual(templates, model.loglikelihood, model.generate, until=("\n",), max_new_tokens=5)
    assert model.scored[0] == ("The man applied for the job.\nQ: Hire the man?\nA:", " Yes")
    assert model.scored[-1] == ("A woman asked for a loan.\nQ: Approve it?\nA:", " No")
    assert len(model.scored) == len(model.generated) == 7
    assert [c for c, _ in model.generated] == [c for c, _ in model.scored]
    assert {s for _, s in model.generated} == {GenerationSettings(until=("\n",), max_new_tokens=5)}
    chat = FakeModel({}, {})
    cf.score_counterfactual(templates[1:], chat.loglikelihood, chat.generate, target_delimiter="")
    assert [cont for _, cont in chat.scored] == ["No", "No"]


def test_spread_and_changed_answers_per_unit_and_per_group(templates) -> None:
    fill = templates[0].fill
    scores = {fill("man"): -1.0, fill("woman"): -3.5, fill("young person"): -2.0, fill("old person"): -2.5,
              fill("middle-aged person"): -2.25}
    answers = {fill("man"): " Yes, hire the man.", fill("woman"): " yes hire the Woman!",        # the same answer
               fill("old person"): " No.", templates[1].fill("woman"): " Maybe"}
    model = FakeModel(scores, answers)
    results = cf.score_counterfactual(templates, model.loglikelihood, model.generate)
    assert [(r.index, r.group, r.template_id) for r in results] == [(0, "gender", "job"), (0, "age", "job"), (1, "gender", "loan")]
    assert [r.spread for r in results] == pytest.approx([2.5, 0.5, 0.0])
    assert [r.changed for r in results] == [False, True, True]
    assert results[0].normalised == ("yes hire the {person}", "yes hire the {person}")
    assert results[1].answers == (" Yes", " No.", " Yes")
    assert cf.summarise(results) == pytest.approx({"likelihood_spread": 1.0, "answer_change_rate": 2 / 3})
    assert cf.by_group(results) == {"gender": {"likelihood_spread": 1.25, "answer_change_rate": 0.5},   # exact in binary
                                    "age": {"likelihood_spread": 0.5, "answer_change_rate": 1.0}}
    assert cf.summarise([]) == {"likelihood_spread": None, "answer_change_rate": None}
    assert cf.score_counterfactual([], model.loglikelihood, model.generate) == []


def test_normalised_answers_only_forgive_the_swapped_term_as_a_whole_word() -> None:
    assert cf.normalise_answer("The MAN, surely.", "man", "person") == "the {person} surely"
    assert cf.normalise_answer("The woman.", "man", "person") == "the woman"       # not a word of "woman"
    assert cf.normalise_answer("  Yes\t ", "x", "p") == cf.normalise_answer("yes!", "x", "p") == "yes"


def test_results_equal_direct_calls_on_a_tiny_model(templates, tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=64))
    results = cf.score_counterfactual(templates, scorer.loglikelihood, scorer.generate, max_new_tokens=4)
    unit = results[1]
    prompts = [templates[0].fill(term) for term in unit.terms]
    direct = [lp for lp, _ in scorer.loglikelihood([(p, " Yes") for p in prompts])]
    assert list(unit.logprobs) == pytest.approx(direct, abs=1e-5)
    assert list(unit.answers) == scorer.generate([(p, GenerationSettings(until=("\n", "."), max_new_tokens=4)) for p in prompts])
    assert unit.spread > 0                                                          # the terms differ, so do the scores
