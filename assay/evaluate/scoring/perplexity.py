"""Rolling log-likelihood results and the perplexities lm-eval derives from them.

lm-eval's `loglikelihood_rolling` tasks report `word_perplexity`, `byte_perplexity` and
`bits_per_byte`, each aggregated over the whole set (sum of log-likelihoods over sum of units), not
as a mean of per-text values. `token_perplexity` adds the per-token view, which depends on the tokenizer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RollingScore:
    """The summed log-probability of a whole text and the units to normalise it by."""

    logprob: float
    tokens: int
    """Tokens scored (every token of the text, as tokenised with the tokenizer's special-token default)."""
    bytes: int
    """UTF-8 bytes of the text (lm-eval's count_bytes)."""
    words: int
    """Whitespace-separated pieces (lm-eval's count_words: `len(re.split(r"\\s+", text))`)."""

    @classmethod
    def of(cls, text: str, logprob: float, tokens: int) -> RollingScore:
        return cls(logprob=logprob, tokens=tokens, bytes=len(text.encode("utf-8")), words=len(re.split(r"\s+", text)))


def token_perplexity(scores: Sequence[RollingScore]) -> float:
    """exp(-Σ logprob / Σ tokens) over the set."""
    return math.exp(-sum(s.logprob for s in scores) / max(sum(s.tokens for s in scores), 1))


def word_perplexity(scores: Sequence[RollingScore]) -> float:
    """lm-eval's weighted_perplexity over words: exp(-Σ logprob / Σ words)."""
    return math.exp(-sum(s.logprob for s in scores) / max(sum(s.words for s in scores), 1))


def bits_per_byte(scores: Sequence[RollingScore]) -> float:
    """lm-eval's bits_per_byte: -Σ logprob / Σ bytes / ln 2."""
    return -sum(s.logprob for s in scores) / max(sum(s.bytes for s in scores), 1) / math.log(2)
