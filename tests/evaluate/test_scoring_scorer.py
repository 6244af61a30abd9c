"""The Scorer's edges: empty inputs, settings that cannot work, dtype casting, perplexity units."""

from __future__ import annotations

import math

import pytest

from assay.errors import ConfigError
from assay.evaluate.scoring import (
    GenerationSettings,
    RollingScore,
    Scorer,
    ScoringSettings,
    bits_per_byte,
    token_perplexity,
    word_perplexity,
)
from tests.train.helpers import build_model


def test_empty_inputs_give_empty_results(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(max_length=16))
    assert scorer.loglikelihood([]) == []
    assert scorer.rolling_scores([]) == []
    assert scorer.generate([]) == []


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"max_length": 1}, {"dtype": "float8"}])
def test_impossible_settings_are_config_errors(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ScoringSettings(**bad)
    with pytest.raises(ConfigError):
        GenerationSettings(max_new_tokens=0)


def test_lengths_that_cannot_fit_name_the_setting(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(max_length=4))
    with pytest.raises(ConfigError, match="max_length"):
        scorer.loglikelihood([("say", " red blue green sky sea sun moon")])
    with pytest.raises(ConfigError, match="max_new_tokens"):
        scorer.generate([("say", GenerationSettings(max_new_tokens=4))])


def test_until_accepts_a_string_or_a_list() -> None:
    assert GenerationSettings(until="\n").until == ("\n",)
    assert GenerationSettings(until=["a", "b"]) == GenerationSettings(until=("a", "b"))
    assert hash(GenerationSettings(until=["a"])) == hash(GenerationSettings(until=("a",)))


def test_dtype_casts_the_model_and_scores_stay_close(tiny_model, tiny_tokenizer) -> None:
    import torch

    requests = [("say red", " blue"), ("", "moon star tree")]
    reference = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(max_length=32)).loglikelihood(requests)
    model = build_model(len(tiny_tokenizer))
    scorer = Scorer(model, tiny_tokenizer, ScoringSettings(max_length=32, dtype="bfloat16", device="cpu"))
    assert next(model.parameters()).dtype == torch.bfloat16
    for (ll, _), (ref, _) in zip(scorer.loglikelihood(requests), reference, strict=True):
        assert math.isfinite(ll) and ll == pytest.approx(ref, rel=0.05)


def test_perplexities_are_aggregated_over_the_whole_set() -> None:
    scores = [RollingScore.of("a b", -4.0, 2), RollingScore.of("ccc", -2.0, 4)]
    assert scores[0].words == 2 and scores[1].bytes == 3
    assert token_perplexity(scores) == pytest.approx(math.exp(6 / 6))
    assert word_perplexity(scores) == pytest.approx(math.exp(6 / 3))
    assert bits_per_byte(scores) == pytest.approx(6 / 6 / math.log(2))
