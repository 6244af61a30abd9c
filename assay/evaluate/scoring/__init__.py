"""The scoring layer: one home for every model call of an evaluation, defined as lm-evaluation-harness defines it.

- `Scorer(model, tokenizer, ScoringSettings(...))` over an already-loaded model or peft model;
  `with scorer.baseline():` scores the base under the adapter without loading it twice.
- `loglikelihood([(context, continuation)])`, `rolling_scores(texts)` / `loglikelihood_rolling(texts)`
  and `generate([(context, GenerationSettings(until=..., max_new_tokens=...))])`, batched and sorted
  longest first, results in the caller's order.

Chat templates: off by default, as in lm-eval (raw text, comparable with published numbers);
`ScoringSettings(chat_template=True)` wraps each non-empty context as a user turn with the
generation prompt, like lm-eval's `--apply_chat_template`.
"""

from .perplexity import RollingScore, bits_per_byte, token_perplexity, word_perplexity
from .scorer import Scorer
from .settings import GenerationSettings, ScoringSettings

__all__ = [
    "GenerationSettings",
    "RollingScore",
    "Scorer",
    "ScoringSettings",
    "bits_per_byte",
    "token_perplexity",
    "word_perplexity",
]
