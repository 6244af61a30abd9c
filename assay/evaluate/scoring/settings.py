"""The scoring layer's settings: one frozen dataclass for the scorer, one for each generation request."""

from __future__ import annotations

from dataclasses import dataclass

from assay.errors import ConfigError

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ScoringSettings:
    """How a `Scorer` runs the model.

    Example: `ScoringSettings(batch_size=32, dtype="bfloat16", device="cuda")` on a GPU.
    """

    batch_size: int = 16
    """Model inputs per forward pass (rows sharing all their tokens count once)."""
    max_length: int | None = None
    """Tokens per forward pass; longer inputs keep their last tokens. None: the model's own context
    length as lm-eval reads it (config `n_positions` / `max_position_embeddings` / `n_ctx`, else the
    tokenizer's `model_max_length`, else 2048)."""
    device: str | None = None
    """Where to run ("cpu", "cuda", "cuda:1"). None: wherever the model already is. Moves the model in place."""
    dtype: str | None = None
    """Cast the model in place to "float32", "bfloat16" or "float16". None: keep its dtype.
    Log-probabilities are always computed in float32, whatever the model's dtype."""
    chat_template: bool = False
    """Wrap each non-empty context in the tokenizer's chat template as a user turn with the generation
    prompt (lm-eval's `--apply_chat_template`). Off by default: lm-eval and published numbers score raw
    text. Rolling texts and empty contexts are never wrapped. Turn on for instruction-tuned models
    whose prompts in use are chat-formatted."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"scoring batch_size must be at least 1 (got {self.batch_size})", hint="set batch_size = 1 or more")
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"scoring max_length must be at least 2 (got {self.max_length})",
                              hint="leave max_length unset to use the model's context length")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"scoring dtype {self.dtype!r} is not one of {', '.join(DTYPES)}", hint='set dtype = "bfloat16" on a GPU, or leave it unset')


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy generation for one request: stop at the first of `until` (cut from the text, like lm-eval)
    or after `max_new_tokens`. The tokenizer's EOS text is always a stop sequence, as in lm-eval."""

    until: tuple[str, ...] = ()
    max_new_tokens: int = 256  # lm-eval's HFLM.max_gen_toks

    def __post_init__(self) -> None:
        if isinstance(self.until, str):
            object.__setattr__(self, "until", (self.until,))
        else:
            object.__setattr__(self, "until", tuple(self.until))
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens})", hint="set max_new_tokens = 1 or more")
