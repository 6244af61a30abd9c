"""The Scorer: every model call of an evaluation goes through one of its three primitives.

    scorer = Scorer(model, tokenizer, ScoringSettings(batch_size=16))
    scorer.loglikelihood([("The capital of France is", " Paris")])    # [(logprob, is_greedy)]
    scorer.rolling_scores(["A whole text."])                            # [RollingScore]
    scorer.generate([("Q: 2+2?\\nA:", GenerationSettings(until=("\\n",), max_new_tokens=8))])
    with scorer.baseline():                                             # the base under the adapter
        scorer.loglikelihood(...)

The definitions are lm-evaluation-harness's (see `tokens`, `forward`, `generation`), so a number
assay reports for a model equals the one lm-eval's HFLM reports for it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from assay.errors import ConfigError

from .forward import score_token_requests
from .generation import Generate, generate_batch, uses_virtual_tokens, with_virtual_tokens
from .perplexity import RollingScore
from .settings import GenerationSettings, ScoringSettings
from .tokens import encode_many, loglikelihood_tokens, prefix_token_id, resolve_max_length, rolling_windows


class Scorer:
    """Scores an already-loaded causal LM (a transformers model or a peft `PeftModel`) with its tokenizer.

    Loading is the caller's job; the scorer puts the model in eval mode and, when `settings` ask for
    it, moves or casts it in place. Build one per loaded model and reuse it.
    """

    def __init__(self, model: Any, tokenizer: Any, settings: ScoringSettings | None = None) -> None:
        self.settings = settings or ScoringSettings()
        self.model = _placed(model, self.settings)
        self.tokenizer = tokenizer
        self.max_length = self.settings.max_length or resolve_max_length(model.config, tokenizer)
        self.prefix_token_id = prefix_token_id(tokenizer)
        self.device = next(self.model.parameters()).device
        self._base_only = False
        self._keeps_logits = "logits_to_keep" in inspect.signature(_inner(self.model).forward).parameters

    @property
    def has_adapter(self) -> bool:
        """Whether the model is a peft model, whose base can be scored through `baseline()`."""
        return hasattr(self.model, "disable_adapter") and hasattr(self.model, "get_base_model")

    @contextlib.contextmanager
    def baseline(self) -> Iterator[Scorer]:
        """Within this block every primitive scores the base model under the adapter, never loaded twice.

        Inside peft's `disable_adapter()` the scorer calls the base model itself (forward and generate):
        for LoRA/DoRA its adapter layers are bypassed; for prompt tuning no virtual tokens are put in
        front. A test checks every method against a freshly built base.
        """
        if not self.has_adapter:
            raise ConfigError("baseline scoring through the same model needs a peft model (an adapter over a base)",
                              hint="load the baseline model separately and build a second Scorer for it")
        if self._base_only:
            yield self
            return
        with self.model.disable_adapter():
            self._base_only = True
            try:
                yield self
            finally:
                self._base_only = False

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """(log P(continuation | context), whether greedy decoding would produce the continuation) per
        request, in order. An empty context is conditioned on the BOS token (else EOS); whitespace at
        the end of a context is scored as part of the continuation."""
        pairs = [(self._templated(ctx), cont) for ctx, cont in requests]
        return self._score(loglikelihood_tokens(self.tokenizer, pairs))

    def rolling_scores(self, texts: Sequence[str]) -> list[RollingScore]:
        """The summed log-probability of each whole text, scored in disjoint windows of `max_length`
        tokens when it is longer, with its token, byte and word counts for perplexity or bits per byte."""
        token_lists = encode_many(self.tokenizer, texts)
        windows = [list(rolling_windows(t, prefix=self.prefix_token_id, max_length=self.max_length)) for t in token_lists]
        flat = [w for text_windows in windows for w in text_windows]
        scored = iter(self._score(flat))
        totals = [sum((next(scored)[0] for _ in text_windows), 0.0) for text_windows in windows]
        return [RollingScore.of(text, total, len(tokens)) for text, total, tokens in zip(texts, totals, token_lists, strict=True)]

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[float]:
        """The summed log-probability of each whole text (lm-eval's `loglikelihood_rolling`)."""
        return [score.logprob for score in self.rolling_scores(texts)]

    def generate(self, requests: Sequence[tuple[str, GenerationSettings]]) -> list[str]:
        """Greedy continuation of each context, cut before its first stop sequence, in order."""
        results: list[str] = [""] * len(requests)
        groups: dict[GenerationSettings, list[int]] = {}
        for index, (_, settings) in enumerate(requests):
            groups.setdefault(settings, []).append(index)
        for settings, indices in groups.items():
            for index, text in self._generate_group([requests[i][0] for i in indices], settings, indices):
                results[index] = text
        return results

    def _generate_group(self, contexts: list[str], settings: GenerationSettings, indices: list[int]) -> Iterator[tuple[int, str]]:
        room = self.max_length - settings.max_new_tokens
        if room < 1:
            raise ConfigError(f"max_new_tokens {settings.max_new_tokens} leaves no room for a context in max_length {self.max_length}",
                              hint="lower max_new_tokens or raise the scoring max_length")
        tokens = [t[-room:] or [self.prefix_token_id] for t in encode_many(self.tokenizer, [self._templated(c) for c in contexts])]
        order = sorted(range(len(contexts)), key=lambda i: (-len(tokens[i]), contexts[i]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        for start in range(0, len(order), self.settings.batch_size):
            batch = order[start: start + self.settings.batch_size]
            texts = generate_batch(self._generator(), self.tokenizer, [tokens[i] for i in batch], settings,
                                   pad_id=pad, device=self.device)
            yield from ((indices[i], text) for i, text in zip(batch, texts, strict=True))

    def _score(self, requests: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        return score_token_requests(self._call, requests, batch_size=self.settings.batch_size,
                                    max_length=self.max_length, device=self.device)

    def _call(self, input_ids: torch.Tensor, keep: int) -> torch.Tensor:
        kwargs = {}
        if self._keeps_logits:
            # Indices, not a count: the model then gathers a contiguous copy of the kept positions. A count
            # slices a strided view, which torch multiplies through a much slower batched matmul when the
            # output layer is frozen (as under peft). Negative indices count from the end, past any
            # prompt-tuning virtual tokens in front.
            kwargs["logits_to_keep"] = torch.arange(-keep, 0, device=input_ids.device)
        return self._network()(input_ids=input_ids, use_cache=False, **kwargs).logits

    def _generator(self) -> Generate:
        if not self._base_only and uses_virtual_tokens(self.model):
            return with_virtual_tokens(self.model)
        return self._network().generate

    def _network(self) -> Any:
        """The module to call: the peft model (adapter on), or its base inside `baseline()`."""
        return self.model.get_base_model() if self._base_only else self.model

    def _templated(self, context: str) -> str:
        if not self.settings.chat_template or context == "":
            return context
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError("chat_template = true, but the tokenizer has no chat template",
                              hint="set chat_template = false, or use a tokenizer that carries one")
        messages = [{"role": "user", "content": context}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _inner(model: Any) -> Any:
    """The transformers model under any peft wrapper (whose forward takes **kwargs and passes them on)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _placed(model: Any, settings: ScoringSettings) -> Any:
    if settings.device is not None or settings.dtype is not None:
        dtype = getattr(torch, settings.dtype) if settings.dtype else None
        model = model.to(device=settings.device, dtype=dtype)
    return model.eval()
