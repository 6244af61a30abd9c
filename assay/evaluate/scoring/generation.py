"""Batched greedy generation with stop sequences: HFLM.generate_until's definition.

Contexts are tokenised like lm-eval (tokenizer's special-token default), left-truncated to
`max_length - max_new_tokens` tokens, left-padded with an attention mask and generated greedily with
the KV cache. A row stops once one of its stop sequences shows in the text of its last few tokens
(lm-eval's MultiTokenEOSCriteria test, with the EOS text always among the stops); the text is then
decoded without special tokens and cut before the first stop sequence. lm-eval keeps a finished row
generating until the whole batch is done; assay stops each row on its own, which yields lm-eval's
batch-size-1 text. (They can differ only for a model whose generation config lacks its EOS id: the
EOS text is dropped by the decoding, so lm-eval keeps what a batched row wrote after it.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .settings import GenerationSettings

Generate = Callable[..., torch.Tensor]


class _StopSequences(StoppingCriteria):
    """Per row: has any stop sequence appeared in the text of the row's last generated tokens?"""

    def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.start: int | None = None
        # lm-eval looks back two tokens more than the stop sequence's own encoding: a model may write it
        # in more pieces (`\n`, `\n` for `\n\n`).
        self.lookbacks = [(stop, len(tokenizer.encode(stop, add_special_tokens=False)) + 2) for stop in stops]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        # Called once per new token; the first call sees one generated token. (With `inputs_embeds`
        # generation, `input_ids` holds only generated tokens, so the prompt length is not known up front.)
        if self.start is None:
            self.start = input_ids.shape[1] - 1
        generated = input_ids[:, self.start:]
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for stop, lookback in self.lookbacks:
            texts = self.tokenizer.batch_decode(generated[:, -lookback:])
            done |= torch.tensor([stop in text for text in texts], dtype=torch.bool, device=input_ids.device)
        return done


def stop_sequences(settings: GenerationSettings, tokenizer: Any) -> list[str]:
    """The request's stop sequences plus the EOS text (lm-eval's handle_stop_sequences)."""
    stops = list(settings.until)
    eos = tokenizer.decode(tokenizer.eos_token_id, skip_special_tokens=False) if tokenizer.eos_token_id is not None else None
    if eos is not None and eos not in stops:
        stops.append(eos)
    return stops


def generate_batch(
    generate: Generate, tokenizer: Any, contexts: Sequence[list[int]], settings: GenerationSettings,
    *, pad_id: int, device: torch.device,
) -> list[str]:
    """Greedy continuations of already-truncated context tokens, one batch, texts cut at the first stop."""
    length = max(len(c) for c in contexts)
    ids = torch.full((len(contexts), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(contexts), length), dtype=torch.long)
    for i, tokens in enumerate(contexts):
        if tokens:
            ids[i, length - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
            mask[i, length - len(tokens):] = 1
    stops = stop_sequences(settings, tokenizer)
    with torch.inference_mode():
        out = generate(
            input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=settings.max_new_tokens,
            do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, pad_token_id=pad_id, use_cache=True,
            stopping_criteria=StoppingCriteriaList([_StopSequences(tokenizer, stops)]),
        )
    texts = tokenizer.batch_decode(out[:, length:].tolist(), skip_special_tokens=True)
    return [cut_at_stops(text, stops) for text in texts]


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """The text before the first stop sequence (lm-eval's postprocess_generated_text)."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text


def with_virtual_tokens(model: Any) -> Generate:
    """`generate` for a prompt-tuned peft model: its virtual tokens go in front of the (left-padded)
    context as embeddings, with the attention mask extended over them, so positions and the KV cache
    are those of the forward pass that training and scoring use. peft's own `generate` ignores the
    position ids and, in this transformers version, does not reproduce greedy decoding by forward passes."""

    def generate(*, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        embeds = model.word_embeddings(input_ids)
        prompts = model.get_prompt(batch_size=input_ids.shape[0]).to(embeds.dtype)
        ones = torch.ones(prompts.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
        new = model.get_base_model().generate(
            inputs_embeds=torch.cat([prompts, embeds], dim=1), attention_mask=torch.cat([ones, attention_mask], dim=1), **kwargs
        )
        return torch.cat([input_ids, new], dim=1)  # the layout of generate(input_ids=...): context, then new tokens

    return generate


def uses_virtual_tokens(model: Any) -> bool:
    """A peft model whose active adapter puts trained embeddings in front of the input (prompt tuning, p-tuning)."""
    config = getattr(model, "active_peft_config", None)
    if config is None or not getattr(config, "is_prompt_learning", False):
        return False
    return str(getattr(config.peft_type, "value", config.peft_type)) not in ("PREFIX_TUNING", "CARTRIDGE", "CPT")
