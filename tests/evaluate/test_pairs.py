"""CrowS-Pairs scoring: lm-eval's `crows_pairs_english` definitions, checked against that very task on a local CSV."""

from __future__ import annotations

import pytest

from assay.evaluate.pairs import by_bias_type, score_pairs, summarise
from assay.evaluate.scoring import Scorer, ScoringSettings

from .scoring_helpers import crows_rows, crows_task, hflm, run_task, write_crows_csv


class FixedScorer:
    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.asked: list[tuple[str, str]] = []

    def loglikelihood(self, requests):
        self.asked.extend(requests)
        return [(v, False) for v in self.values]


def test_each_sentence_is_scored_alone_and_ties_are_not_stereotyped() -> None:
    pairs = [{"sent_more": "a", "sent_less": "b", "bias_type": "age"}, {"sent_more": "c", "sent_less": "d", "bias_type": "age"},
             {"sent_more": "e", "sent_less": "f", "bias_type": "gender"}]
    scorer = FixedScorer([-1.0, -3.0, -2.0, -2.0, -5.0, -4.0])
    results = score_pairs(scorer, pairs)
    assert scorer.asked == [("", "a"), ("", "b"), ("", "c"), ("", "d"), ("", "e"), ("", "f")]
    assert [r.pct_stereotype for r in results] == [1.0, 0.0, 0.0]       # strict >: a tie is not a preference
    assert [r.likelihood_diff for r in results] == [2.0, 0.0, 1.0]
    assert summarise(results) == pytest.approx({"likelihood_diff": 1.0, "pct_stereotype": 1 / 3})
    assert by_bias_type(results) == {"age": {"likelihood_diff": 1.0, "pct_stereotype": 0.5},
                                     "gender": {"likelihood_diff": 1.0, "pct_stereotype": 0.0}}


def test_pairs_equal_lm_evals_crows_pairs_task_on_the_same_file(tiny_model, tiny_tokenizer, tmp_path) -> None:
    pytest.importorskip("lm_eval")
    rows = crows_rows()
    data = write_crows_csv(tmp_path / "crows_pairs.csv", rows)
    reference = run_task(hflm(tiny_model, tiny_tokenizer, batch_size=4, max_length=64), tmp_path, crows_task(tmp_path, data))
    ours = score_pairs(Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=64)), rows)

    assert len(reference["samples"]) == len(ours) == len(rows)
    for sample, result in zip(reference["samples"], ours, strict=True):
        assert [tuple(a) for a in sample["arguments"]] == [("", sample["doc"]["sent_more"]), ("", sample["doc"]["sent_less"])]
        assert [result.ll_more, result.ll_less] == pytest.approx([r[0][0] for r in sample["resps"]], abs=1e-4)
        assert result.pct_stereotype == sample["pct_stereotype"]
        assert result.likelihood_diff == pytest.approx(sample["likelihood_diff"], abs=1e-4)
    summary = summarise(ours)
    assert summary["pct_stereotype"] == pytest.approx(reference["results"]["pct_stereotype,none"])  # a fraction in [0, 1]
    assert summary["likelihood_diff"] == pytest.approx(reference["results"]["likelihood_diff,none"], abs=1e-4)
    assert 0 < summary["pct_stereotype"] < 1  # both outcomes occur, so a flipped decision would show

    # per bias_type: lm-eval's own per-pair metrics, grouped by the same column
    for name, metrics in by_bias_type(ours).items():
        group = [s for s in reference["samples"] if s["doc"]["bias_type"] == name]
        assert metrics["pct_stereotype"] == pytest.approx(sum(s["pct_stereotype"] for s in group) / len(group))
        assert metrics["likelihood_diff"] == pytest.approx(sum(s["likelihood_diff"] for s in group) / len(group), abs=1e-4)
