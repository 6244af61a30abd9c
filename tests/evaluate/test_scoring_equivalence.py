"""The scoring layer against lm-eval's own HFLM on the same loaded model: same numbers, same decisions."""

from __future__ import annotations

import random

import pytest

from assay.evaluate.scoring import GenerationSettings, Scorer, ScoringSettings
from tests.train.helpers import build_tokenizer

from .scoring_helpers import (
    GENERATION_REQUESTS,
    LOGLIKELIHOOD_REQUESTS,
    ROLLING_TEXTS,
    SHARED_INPUT_REQUESTS,
    hflm,
    instances,
)

pytest.importorskip("lm_eval")

MAX_LENGTH = 16
TOLERANCE = 1e-4


def generation_requests() -> list[tuple[str, GenerationSettings]]:
    return [(ctx, GenerationSettings(until=tuple(kw["until"]), max_new_tokens=kw["max_gen_toks"])) for ctx, kw in GENERATION_REQUESTS]


def assert_same_scores(ours: list[tuple[float, bool]], theirs: list[tuple[float, bool]]) -> None:
    assert len(ours) == len(theirs)
    for (ll, greedy), (ref_ll, ref_greedy) in zip(ours, theirs, strict=True):
        assert abs(ll - ref_ll) <= TOLERANCE
        assert greedy == ref_greedy


def greedy_requests(scorer: Scorer) -> list[tuple[str, str]]:
    """Continuations the model itself writes, so some requests are greedy (is_greedy can be True)."""
    contexts = ["say red", "moon star", "the quick brown"]
    texts = scorer.generate([(c, GenerationSettings(max_new_tokens=3)) for c in contexts])
    return [(c, t) for c, t in zip(contexts, texts, strict=True) if t]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_loglikelihood_equals_lm_eval(tiny_model, tiny_tokenizer, batch_size: int) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=batch_size, max_length=MAX_LENGTH))
    requests = LOGLIKELIHOOD_REQUESTS + greedy_requests(scorer)
    theirs = hflm(tiny_model, tiny_tokenizer, batch_size=4, max_length=MAX_LENGTH).loglikelihood(
        instances("loglikelihood", requests), disable_tqdm=True)
    assert_same_scores(scorer.loglikelihood(requests), theirs)
    assert any(greedy for _, greedy in theirs), "no greedy request: the is_greedy check was not exercised"


def test_requests_sharing_a_model_input_read_their_own_positions(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=MAX_LENGTH))
    theirs = hflm(tiny_model, tiny_tokenizer, batch_size=4, max_length=MAX_LENGTH, logits_cache=False).loglikelihood(
        instances("loglikelihood", SHARED_INPUT_REQUESTS), disable_tqdm=True)
    assert_same_scores(scorer.loglikelihood(SHARED_INPUT_REQUESTS), theirs)
    assert_same_scores(scorer.loglikelihood(SHARED_INPUT_REQUESTS[:1]), theirs[:1])


def test_loglikelihood_with_a_bos_token_equals_lm_eval(tiny_model) -> None:
    tokenizer = build_tokenizer()
    tokenizer.bos_token = "<|im_start|>"
    scorer = Scorer(tiny_model, tokenizer, ScoringSettings(batch_size=4, max_length=MAX_LENGTH))
    theirs = hflm(tiny_model, tokenizer, batch_size=4, max_length=MAX_LENGTH).loglikelihood(
        instances("loglikelihood", LOGLIKELIHOOD_REQUESTS), disable_tqdm=True)
    assert_same_scores(scorer.loglikelihood(LOGLIKELIHOOD_REQUESTS), theirs)


def test_results_come_back_in_the_callers_order(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=3, max_length=MAX_LENGTH))
    order = list(range(len(LOGLIKELIHOOD_REQUESTS)))
    random.Random(0).shuffle(order)
    straight = scorer.loglikelihood(LOGLIKELIHOOD_REQUESTS)
    shuffled = scorer.loglikelihood([LOGLIKELIHOOD_REQUESTS[i] for i in order])
    assert_same_scores(shuffled, [straight[i] for i in order])
    assert len({round(ll, 3) for ll, _ in straight}) > 5  # distinct values, so a mix-up would show


def test_rolling_loglikelihood_equals_lm_eval(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=MAX_LENGTH))
    theirs = hflm(tiny_model, tiny_tokenizer, batch_size=4, max_length=MAX_LENGTH).loglikelihood_rolling(
        instances("loglikelihood_rolling", [(t,) for t in ROLLING_TEXTS]), disable_tqdm=True)
    scores = scorer.rolling_scores(ROLLING_TEXTS)
    assert len(tiny_tokenizer.encode(ROLLING_TEXTS[0])) > 2 * MAX_LENGTH  # several windows
    for score, ref, text in zip(scores, theirs, ROLLING_TEXTS, strict=True):
        assert abs(score.logprob - ref) <= TOLERANCE
        assert score.tokens == len(tiny_tokenizer.encode(text))
        assert score.bytes == len(text.encode("utf-8"))
    assert scorer.loglikelihood_rolling(ROLLING_TEXTS) == [s.logprob for s in scores]


def test_generation_equals_lm_eval(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=4, max_length=MAX_LENGTH * 2))
    theirs = hflm(tiny_model, tiny_tokenizer, batch_size=1, max_length=MAX_LENGTH * 2).generate_until(
        instances("generate_until", GENERATION_REQUESTS), disable_tqdm=True)
    ours = scorer.generate(generation_requests())
    assert ours == theirs
    assert len(set(ours)) > 3


def test_generation_stops_at_a_stop_sequence(tiny_model, tiny_tokenizer) -> None:
    scorer = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(batch_size=2, max_length=64))
    [free] = scorer.generate([("say red", GenerationSettings(max_new_tokens=12))])
    stop = free[len(free) // 2]
    [cut] = scorer.generate([("say red", GenerationSettings(until=(stop,), max_new_tokens=12))])
    assert cut == free.split(stop)[0]


def test_chat_template_wraps_the_context(tiny_model, tiny_tokenizer) -> None:
    plain = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(max_length=64))
    chat = Scorer(tiny_model, tiny_tokenizer, ScoringSettings(max_length=64, chat_template=True))
    templated = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "say red"}], tokenize=False, add_generation_prompt=True)
    [(ll_chat, _)] = chat.loglikelihood([("say red", "blue")])
    [(ll_templated, _)] = plain.loglikelihood([(templated, "blue")])
    [(ll_plain, _)] = plain.loglikelihood([("say red", "blue")])
    assert ll_chat == pytest.approx(ll_templated, abs=1e-6)
    assert abs(ll_chat - ll_plain) > 1e-3
    # an empty context stays empty (conditioned on EOS), whatever the option
    assert chat.loglikelihood([("", "say red")]) == plain.loglikelihood([("", "say red")])


def forward_only_greedy(model, tokenizer, context: str, steps: int) -> str:
    """The definition of greedy decoding: argmax of a full forward pass per step, no cache, no padding."""
    import torch

    ids = tokenizer.encode(context)
    start = len(ids)
    with torch.inference_mode():
        for _ in range(steps):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
            if ids[-1] == tokenizer.eos_token_id:  # EOS ends the text (it is always a stop sequence)
                break
    return tokenizer.decode(ids[start:], skip_special_tokens=True)


@pytest.mark.parametrize("method", ["none", "prompt_tuning"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_batched_generation_equals_forward_only_greedy_decoding(tiny_tokenizer, method: str, batch_size: int) -> None:
    """Left padding and the KV cache change nothing, also for prompt tuning (whose virtual tokens sit in
    front: peft's own generate gets this wrong in this transformers version, so lm-eval does too)."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from tests.train.helpers import build_model

    model = build_model(len(tiny_tokenizer), seed=3)
    if method == "prompt_tuning":
        model = get_peft_model(model, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3))
    model.eval()
    contexts = [ctx for ctx, _ in GENERATION_REQUESTS]
    ours = Scorer(model, tiny_tokenizer, ScoringSettings(batch_size=batch_size, max_length=64)).generate(
        [(c, GenerationSettings(max_new_tokens=6)) for c in contexts])
    assert ours == [forward_only_greedy(model, tiny_tokenizer, c, 6) for c in contexts]
