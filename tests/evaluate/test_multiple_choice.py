"""Multiple-choice scoring: lm-eval's decision rules, and the same results as a real lm-eval task on the same file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from assay.evaluate.multiple_choice import score_multiple_choice, summarise
from assay.evaluate.scoring import Scorer, ScoringSettings

from .scoring_helpers import choice_items, choice_task, hflm, run_task, write_jsonl


@dataclass
class FixedScorer:
    """Stands in for a Scorer: fixed log-likelihoods, and records what it was asked."""

    values: list[float]
    settings: ScoringSettings = field(default_factory=ScoringSettings)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def loglikelihood(self, requests):
        self.asked.extend(requests)
        return [(v, False) for v in self.values]


def test_acc_norm_divides_by_characters_and_acc_bytes_by_utf8_bytes() -> None:
    # "ü" is 1 character but 2 bytes; "ab" is 2 of each.
    scorer = FixedScorer([-1.5, -2.5])
    [result] = score_multiple_choice(scorer, [{"question": "q", "choices": ["ü", "ab"], "answer": 1}])
    assert result.pred == 0 and result.acc == 0.0                      # -1.5 > -2.5
    assert result.pred_norm == 1 and result.acc_norm == 1.0            # -1.5/1 < -2.5/2
    assert result.pred_bytes == 0 and result.acc_bytes == 0.0          # -1.5/2 > -2.5/2
    assert scorer.asked == [("q", " ü"), ("q", " ab")]                 # target delimiter " "


def test_ties_go_to_the_first_choice_and_the_delimiter_follows_the_chat_template() -> None:
    scorer = FixedScorer([-2.0, -2.0, -3.0], settings=ScoringSettings(chat_template=True))
    [result] = score_multiple_choice(scorer, [{"question": "q", "choices": ["a", "b", "c"], "answer": 2}])
    assert (result.pred, result.pred_norm, result.pred_bytes) == (0, 0, 0)
    assert scorer.asked[0] == ("q", "a")  # lm-eval drops the delimiter under a chat template
    assert summarise([result]) == {"acc": 0.0, "acc_norm": 0.0, "acc_bytes": 0.0}


def test_multiple_choice_equals_an_lm_eval_task_on_the_same_file(tiny_model, tiny_tokenizer, tmp_path) -> None:
    pytest.importorskip("lm_eval")
    items = choice_items()
    data = write_jsonl(tmp_path / "probe_mc.jsonl", items)
    reference = run_task(hflm(tiny_model, tiny_tokenizer, batch_size=4, max_length=64), tmp_path, choice_task(tmp_path, data))
    ours = score_multiple_choice(Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=64)), items)

    assert len(reference["samples"]) == len(ours) == len(items)
    for sample, result in zip(reference["samples"], ours, strict=True):
        assert [tuple(a) for a in sample["arguments"]] == [(sample["doc"]["question"], f" {c}") for c in sample["doc"]["choices"]]
        lls = [resp[0][0] for resp in sample["resps"]]
        assert result.logprobs == pytest.approx(lls, abs=1e-4)
        assert (result.acc, result.acc_norm, result.acc_bytes) == (sample["acc"], sample["acc_norm"], sample["acc_bytes"])
    summary = summarise(ours)
    for name in ("acc", "acc_norm", "acc_bytes"):
        assert summary[name] == pytest.approx(reference["results"][f"{name},none"])
    assert 0 < summary["acc"] < 1  # some right, some wrong: a flipped decision would show
    assert any(r.pred != r.pred_norm for r in ours) or any(r.pred_norm != r.pred_bytes for r in ours)
