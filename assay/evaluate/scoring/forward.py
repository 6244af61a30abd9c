"""Batched log-likelihood of token continuations: HFLM._loglikelihood_tokens, leaner.

Same numbers as lm-eval: the input is `(context + continuation)[-(max_length + 1):][:-1]` (left
truncation), right-padded without an attention mask (the model is causal, so padding after a row
cannot change it), inputs sorted longest first (an out-of-memory error shows on the first batch,
and rows of similar length share a batch), and the continuation read from the last positions of
each row (past any prompt-tuning virtual tokens the model puts in front).

Leaner than lm-eval in three ways that do not change a number: requests whose model inputs are
identical share one row (lm-eval does this only for one-token continuations); the output layer
runs only on the positions that predict continuation tokens (`logits_to_keep`, where the model
takes it); and log-softmax runs per row on those positions, in float32, not over the whole
[batch, length, vocabulary] block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from assay.errors import ConfigError

from .tokens import TokenRequest

ModelCall = Callable[[torch.Tensor, int], torch.Tensor]
"""(input_ids [batch, length], positions to keep from the end) → logits [batch, ≥ kept, vocab]."""


def score_token_requests(
    call: ModelCall, requests: Sequence[TokenRequest], *, batch_size: int, max_length: int, device: torch.device
) -> list[tuple[float, bool]]:
    """(summed log-probability, is greedy) per request, in the requests' order."""
    rows = _group_by_input(requests, max_length)
    order = sorted(rows, key=lambda key: (-len(key), key))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(requests)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start: start + batch_size]
            spans = [max(len(requests[i][1]) for i in rows[key]) for key in batch]
            for key, logits in zip(batch, _forward(call, batch, spans, device), strict=True):
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                greedy = logprobs.max(dim=-1).indices  # argmax, as lm-eval takes it (max is faster on CPU)
                for index in rows[key]:
                    results[index] = _read(logprobs, greedy, requests[index][1])
    return results


def _group_by_input(requests: Sequence[TokenRequest], max_length: int) -> dict[tuple[int, ...], list[int]]:
    """Model input → indices of the requests it answers."""
    rows: dict[tuple[int, ...], list[int]] = {}
    for index, (context, continuation) in enumerate(requests):
        if len(continuation) > max_length:
            raise ConfigError(
                f"request {index}: its continuation has {len(continuation)} tokens, more than max_length {max_length}",
                hint="raise the scoring max_length or shorten the continuation",
            )
        key = tuple((context + continuation)[-(max_length + 1):][:-1])
        rows.setdefault(key, []).append(index)
    return rows


def _forward(call: ModelCall, batch: list[tuple[int, ...]], spans: list[int], device: torch.device) -> list[torch.Tensor]:
    """One forward pass; per row, the logits of its last `span` positions (those predicting continuation tokens)."""
    length = len(batch[0])  # sorted longest first
    ids = torch.zeros((len(batch), length), dtype=torch.long)
    for i, key in enumerate(batch):
        ids[i, : len(key)] = torch.tensor(key, dtype=torch.long)
    keep = max(length - len(key) + span for key, span in zip(batch, spans, strict=True))
    logits = call(ids.to(device), keep)
    offset = logits.shape[1] - length  # < 0 when logits were trimmed; > 0 with prompt-tuning virtual tokens
    return [logits[i, offset + len(key) - span: offset + len(key)] for i, (key, span) in enumerate(zip(batch, spans, strict=True))]


def _read(logprobs: torch.Tensor, greedy: torch.Tensor, continuation: list[int]) -> tuple[float, bool]:
    """A continuation's summed log-probability and whether greedy decoding would produce it, from the
    row's trailing positions (a row shared by several requests serves each from its own tail)."""
    n = len(continuation)
    target = torch.tensor(continuation, dtype=torch.long, device=logprobs.device)
    total = logprobs[-n:].gather(-1, target[:, None]).sum()
    return float(total), bool((greedy[-n:] == target).all())
