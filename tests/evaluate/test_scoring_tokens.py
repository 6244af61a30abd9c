"""Tokenisation rules of the scoring layer: lm-eval's context/continuation split, empty contexts, rolling windows."""

from __future__ import annotations

import pytest

from assay.errors import InputError
from assay.evaluate.scoring.tokens import (
    loglikelihood_tokens,
    prefix_token_id,
    resolve_max_length,
    rolling_windows,
    split_trailing_whitespace,
)
from tests.train.helpers import build_tokenizer


def test_trailing_whitespace_moves_to_the_continuation() -> None:
    assert split_trailing_whitespace("Answer: ", "Paris") == ("Answer:", " Paris")
    assert split_trailing_whitespace("Q \n\t", "x") == ("Q", " \n\tx")
    assert split_trailing_whitespace("Q", " x") == ("Q", " x")


def test_context_and_continuation_are_split_from_the_joint_tokens(tiny_tokenizer) -> None:
    [(ctx, cont)] = loglikelihood_tokens(tiny_tokenizer, [("say red ", "blue")])
    assert ctx == tiny_tokenizer.encode("say red")
    assert ctx + cont == tiny_tokenizer.encode("say red blue")


def test_empty_context_is_conditioned_on_eos_without_bos(tiny_tokenizer) -> None:
    assert tiny_tokenizer.bos_token_id is None
    [(ctx, cont)] = loglikelihood_tokens(tiny_tokenizer, [("", "say red")])
    assert ctx == [tiny_tokenizer.eos_token_id]
    assert cont == tiny_tokenizer.encode("say red", add_special_tokens=False)


def test_empty_context_is_conditioned_on_bos_when_there_is_one() -> None:
    tokenizer = build_tokenizer()
    tokenizer.bos_token = "<|im_start|>"
    assert prefix_token_id(tokenizer) == tokenizer.bos_token_id != tokenizer.eos_token_id
    [(ctx, cont)] = loglikelihood_tokens(tokenizer, [("", "say red")])
    assert ctx == [tokenizer.bos_token_id]
    # A continuation that starts with the prefix token's text is conditioned on that token itself.
    [(ctx, cont)] = loglikelihood_tokens(tokenizer, [("", "<|im_start|>say red")])
    assert ctx == [tokenizer.bos_token_id] and cont == tokenizer.encode("say red", add_special_tokens=False)


def test_a_continuation_without_tokens_is_an_input_error(tiny_tokenizer) -> None:
    with pytest.raises(InputError, match="request 1"):
        loglikelihood_tokens(tiny_tokenizer, [("say", " red"), ("say", "")])


@pytest.mark.parametrize("max_length", [1, 2, 3, 5, 8])
def test_rolling_windows_score_every_token_once_within_max_length(max_length: int) -> None:
    for n in range(0, 30):
        tokens = list(range(100, 100 + n))
        windows = list(rolling_windows(tokens, prefix=7, max_length=max_length))
        assert [t for _, cont in windows for t in cont] == tokens
        for ctx, cont in windows:
            assert ctx and len(cont) <= max_length
            joined = ctx + cont
            # the continuation's first token is predicted from the token right before it in the text (or the prefix)
            assert joined[len(ctx) - 1] == (7 if cont[0] == tokens[0] else tokens[tokens.index(cont[0]) - 1])


@pytest.mark.parametrize("max_length", [1, 2, 3, 5, 8])
def test_rolling_windows_equal_lm_eval(max_length: int) -> None:
    utils = pytest.importorskip("lm_eval.utils")
    for n in range(0, 30):
        tokens = list(range(100, 100 + n))
        expected = [utils.make_disjoint_window(w) for w in utils.get_rolling_token_windows(tokens, 7, max_length, 1)]
        assert list(rolling_windows(tokens, prefix=7, max_length=max_length)) == expected


def test_max_length_is_read_like_lm_eval(tiny_model, tiny_tokenizer) -> None:
    assert resolve_max_length(tiny_model.config, tiny_tokenizer) == tiny_model.config.max_position_embeddings
    models_utils = pytest.importorskip("lm_eval.models.utils")
    assert resolve_max_length(tiny_model.config, tiny_tokenizer) == models_utils.resolve_max_length(tiny_model.config, tiny_tokenizer)
