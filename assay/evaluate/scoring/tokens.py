"""Tokenisation exactly as lm-evaluation-harness's HFLM does it, so assay's numbers compare with published ones.

Each function names the lm-eval code it mirrors (lm-eval 0.4.13: `lm_eval/api/model.py` TemplateLM,
`lm_eval/models/huggingface.py` HFLM, `lm_eval/utils.py`). The tokenizer is called in batches (the
Rust tokenizer parallelises them); the tokens are the ones lm-eval's one-at-a-time calls produce.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from assay.errors import InputError

TokenRequest = tuple[list[int], list[int]]
"""(context tokens, continuation tokens): the continuation is scored given the context."""

DEFAULT_MAX_LENGTH = 2048  # lm-eval's HFLM._DEFAULT_MAX_LENGTH
_TOKENIZER_INFINITY = 1000000000000000019884624838656  # transformers' "no limit" model_max_length


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context is conditioned on: BOS, else EOS (HFLM.prefix_token_id)."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has neither a BOS nor an EOS token to condition empty contexts on",
                         hint="set tokenizer.eos_token before scoring")
    return tokenizer.eos_token_id


def resolve_max_length(model_config: Any, tokenizer: Any) -> int:
    """The model's context length as lm-eval reads it (`models/utils.py` resolve_max_length)."""
    config = getattr(model_config, "text_config", None) or model_config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit != _TOKENIZER_INFINITY else DEFAULT_MAX_LENGTH


def encode_many(tokenizer: Any, texts: Sequence[str], *, add_special_tokens: bool | None = None) -> list[list[int]]:
    """HFLM.tok_encode over many texts: the tokenizer's own special-token default, except that a text
    already starting with the prefix token's text gets no second one."""
    if not texts:
        return []
    if add_special_tokens is not None:
        return _encode(tokenizer, list(texts), add_special_tokens=add_special_tokens)
    prefix = tokenizer.decode(prefix_token_id(tokenizer))
    plain = [i for i, t in enumerate(texts) if not t.startswith(prefix)]
    prefixed = [i for i, t in enumerate(texts) if t.startswith(prefix)]
    out: list[list[int]] = [[] for _ in texts]
    for indices, kwargs in ((plain, {}), (prefixed, {"add_special_tokens": False})):
        for i, ids in zip(indices, _encode(tokenizer, [texts[i] for i in indices], **kwargs), strict=True):
            out[i] = ids
    return out


def _encode(tokenizer: Any, texts: list[str], **kwargs: Any) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, **kwargs)["input_ids"]]


def split_trailing_whitespace(context: str, continuation: str) -> tuple[str, str]:
    """Move whitespace at the end of the context to the start of the continuation (TemplateLM._encode_pair),
    so "Answer: " + "Paris" is tokenised like "Answer:" + " Paris"."""
    n = len(context) - len(context.rstrip())
    return (context[:-n], context[-n:] + continuation) if n else (context, continuation)


def loglikelihood_tokens(tokenizer: Any, requests: Sequence[tuple[str, str]]) -> list[TokenRequest]:
    """(context, continuation) strings → token requests, as TemplateLM.loglikelihood builds them.

    A non-empty context: the whole text is tokenised and split after the context's own tokens (so a
    word straddling the boundary is tokenised as the model would see it). An empty context: the
    continuation alone, conditioned on the prefix token (BOS, else EOS).
    """
    empty = [i for i, (ctx, _) in enumerate(requests) if ctx == ""]
    full = [i for i, (ctx, _) in enumerate(requests) if ctx != ""]
    out: list[TokenRequest] = [([], []) for _ in requests]
    prefix = prefix_token_id(tokenizer)
    for i, cont in zip(empty, encode_many(tokenizer, [requests[i][1] for i in empty], add_special_tokens=False), strict=True):
        out[i] = _condition_on_prefix(cont, prefix)
    pairs = [split_trailing_whitespace(*requests[i]) for i in full]
    wholes = encode_many(tokenizer, [ctx + cont for ctx, cont in pairs])
    contexts = encode_many(tokenizer, [ctx for ctx, _ in pairs])
    for i, whole, ctx in zip(full, wholes, contexts, strict=True):
        # A whitespace-only context tokenises to nothing: lm-eval fails there; assay conditions on the prefix.
        out[i] = (ctx, whole[len(ctx):]) if ctx else _condition_on_prefix(whole, prefix)
    for i, (_, cont) in enumerate(out):
        if not cont:
            raise InputError(f"request {i}: the continuation {requests[i][1]!r} has no tokens to score",
                             hint="every continuation needs at least one token")
    return out


def _condition_on_prefix(tokens: list[int], prefix: int) -> TokenRequest:
    # lm-eval: a continuation that already starts with the prefix token is conditioned on that token.
    if tokens and tokens[0] == prefix:
        return tokens[:1], tokens[1:]
    return [prefix], tokens


def rolling_windows(tokens: list[int], *, prefix: int, max_length: int) -> Iterator[TokenRequest]:
    """Disjoint scoring windows over a text longer than the model's context (lm-eval's
    get_rolling_token_windows with context_len=1, then make_disjoint_window).

    Every token is scored exactly once: the first window predicts the first `max_length` tokens from
    the prefix token; each later window predicts the next up to `max_length` tokens given the tokens
    right before them.
    """
    if not tokens:
        return
    first = min(max_length, len(tokens))
    yield [prefix], tokens[:first]
    predicted = first
    while predicted < len(tokens):
        size = min(len(tokens) - predicted, max_length)
        end = predicted + size  # >= max_length + 1, so the window below starts inside the text
        window = tokens[end - max_length - 1: end - 1]
        yield window[: len(window) - (size - 1)], tokens[end - size: end]
        predicted += size
