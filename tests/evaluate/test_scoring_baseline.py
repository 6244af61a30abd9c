"""Scoring the baseline through the same loaded base: equal to a freshly built base, for every adapter method."""

from __future__ import annotations

from typing import Any

import pytest

from assay.errors import ConfigError
from assay.evaluate.scoring import GenerationSettings, Scorer, ScoringSettings
from tests.train.helpers import build_model

from .scoring_helpers import LOGLIKELIHOOD_REQUESTS, ROLLING_TEXTS

SETTINGS = ScoringSettings(batch_size=4, max_length=16)
GENERATIONS = [("say red", GenerationSettings(until=("\n",), max_new_tokens=6)), ("moon", GenerationSettings(max_new_tokens=6))]


def peft_config(method: str) -> Any:
    from peft import LoraConfig, PromptTuningConfig, TaskType

    if method == "prompt_tuning":
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3)
    # init_lora_weights=False: lora_B random, so the adapter changes every number
    return LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False, use_dora=method == "dora")


def everything(scorer: Scorer) -> tuple[list[float], list[float], list[str]]:
    return ([ll for ll, _ in scorer.loglikelihood(LOGLIKELIHOOD_REQUESTS)], scorer.loglikelihood_rolling(ROLLING_TEXTS),
            scorer.generate(GENERATIONS))


def assert_close(ours: tuple, theirs: tuple) -> None:
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1], strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert ours[2] == theirs[2]


def differs(ours: tuple, theirs: tuple) -> bool:
    return any(abs(a - b) > 1e-3 for a, b in zip(ours[0], theirs[0], strict=True))


@pytest.mark.parametrize("method", ["lora", "dora", "prompt_tuning"])
def test_baseline_through_the_adapter_equals_a_fresh_base(tiny_model, tiny_tokenizer, method: str) -> None:
    from peft import get_peft_model

    fresh = everything(Scorer(tiny_model, tiny_tokenizer, SETTINGS))  # tiny_model: build_model's seed 0, never wrapped
    scorer = Scorer(get_peft_model(build_model(len(tiny_tokenizer)), peft_config(method)), tiny_tokenizer, SETTINGS)
    candidate = everything(scorer)
    assert differs(candidate, fresh), "the adapter changes nothing: the test could not tell base from candidate"
    with scorer.baseline() as base:
        baseline = everything(base)
    assert_close(baseline, fresh)
    assert_close(everything(scorer), candidate)  # the adapter is back on after the block


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_adapter_scores_equal_lm_eval_on_the_peft_model(tiny_tokenizer, method: str) -> None:
    pytest.importorskip("lm_eval")
    from peft import get_peft_model

    from .scoring_helpers import hflm, instances

    model = get_peft_model(build_model(len(tiny_tokenizer)), peft_config(method)).eval()
    ours = Scorer(model, tiny_tokenizer, SETTINGS).loglikelihood(LOGLIKELIHOOD_REQUESTS)
    theirs = hflm(model, tiny_tokenizer, batch_size=4, max_length=16).loglikelihood(
        instances("loglikelihood", LOGLIKELIHOOD_REQUESTS), disable_tqdm=True)
    for (ll, greedy), (ref, ref_greedy) in zip(ours, theirs, strict=True):
        assert ll == pytest.approx(ref, abs=1e-4) and greedy == ref_greedy


def test_baseline_needs_an_adapter(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, SETTINGS)
    assert not scorer.has_adapter
    with pytest.raises(ConfigError, match="peft model"), scorer.baseline():
        pass
