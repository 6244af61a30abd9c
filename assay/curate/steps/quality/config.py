"""The `quality` step's options, and the names and order of its checks."""

from __future__ import annotations

from typing import Literal, get_args

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.stopwords import ENGLISH_STOP_WORDS, GOPHER_STOP_WORDS
from assay.curate.words import is_punctuation_token

Check = Literal[
    "empty_response",
    "prompt_equals_response",
    "boilerplate_response",
    "too_short",
    "too_long",
    "duplicate_lines",
    "duplicate_paragraphs",
    "repeated_ngrams",
    "low_mean_word_length",
    "high_mean_word_length",
    "high_symbol_ratio",
    "low_alpha_ratio",
    "no_stop_words",
]
# Check lists them in the order they are tried: the first failure is the row's reason. Response checks
# are the most specific, then length, then repetition (Gopher runs its repetition filter first), then word shape.
CHECK_ORDER: tuple[Check, ...] = get_args(Check)
RESPONSE_CHECKS = frozenset({"empty_response", "prompt_equals_response", "boilerplate_response"})

# Matched case-insensitively at the start of short responses (see `boilerplate_max_chars`).
DEFAULT_BOILERPLATE = [
    r"as an ai(?: language)? model\b",
    r"as a (?:large )?language model\b",
    r"(?:i(?:['’]m| am) )?(?:sorry|afraid)[,.!]? (?:but )?i (?:can(?:['’]?t|not)|am (?:not able|unable)|won['’]?t|will not|must decline)\b",
    r"i apologi[sz]e,? (?:but )?i (?:can(?:['’]?t|not)|am (?:not able|unable)|won['’]?t)\b",
    r"i (?:can(?:['’]?t|not)|am (?:not able|unable) to|won['’]?t) (?:assist|help|comply|fulfill|provide|do that|answer|respond)\b",
    r"i(?:['’]m| am) (?:just )?an? (?:ai|artificial intelligence|language model)\b",
]

MAX_NGRAM = 10  # the largest n of the n-gram repetition checks


class QualityConfig(BaseModel):
    """Options of the `quality` step. `None` turns a threshold off."""

    model_config = ConfigDict(extra="forbid")

    min_chars: int | None = Field(
        10, description="Reject rows whose content has fewer characters (`too_short`)."
    )
    max_chars: int | None = Field(
        100_000, description="Reject rows whose content has more characters (`too_long`)."
    )
    min_words: int | None = Field(
        5, description="Reject rows with fewer whitespace-separated words in the whole content (`too_short`)."
    )
    max_words: int | None = Field(20_000, description="Reject rows with more words (`too_long`).")
    min_mean_word_length: float | None = Field(
        2.5,
        description="Reject rows whose mean word length (letters and digits per word) is lower (`low_mean_word_length`; Gopher: 3, but algebra rows measured 2.7).",
    )
    max_mean_word_length: float | None = Field(
        10.0,
        description="Reject rows whose mean word length is higher (`high_mean_word_length`; Gopher: 10).",
    )
    max_duplicate_line_fraction: float | None = Field(
        0.3,
        description="Reject rows where more than this fraction of lines (those with a letter or digit) repeat an earlier line (`duplicate_lines`; Gopher: 0.3).",
    )
    max_duplicate_paragraph_fraction: float | None = Field(
        0.3,
        description="Reject rows where more than this fraction of paragraphs repeat an earlier one (`duplicate_paragraphs`; Gopher: 0.3).",
    )
    top_ngram_max_fraction: dict[int, float] | None = Field(
        default_factory=lambda: {2: 0.5, 3: 0.5, 4: 0.5},
        description="n -> largest share of the row's token characters that copies of its most repeated n-gram may cover "
        "(`repeated_ngrams`; any 2 <= n <= 10). Gopher's web-page values {2: 0.2, 3: 0.18, 4: 0.16} (with the 5-10 ones) "
        "reject 21 % of GSM8K rows, whose answers restate the question (max measured 0.49); these catch degenerate repetition.",
    )
    duplicate_ngram_max_fraction: dict[int, float] | None = Field(
        default_factory=lambda: {5: 0.6, 10: 0.5},
        description="n -> largest share of token characters inside later copies of n-grams (`repeated_ngrams`; any 2 <= n <= 10). "
        "Gopher's web-page values are {5: 0.15, 6: 0.14, ..., 10: 0.10}. The fraction can only fall as n grows, so 5 and 10 "
        "bracket the rest.",
    )
    ngram_min_words: int = Field(
        50,
        description="Skip the n-gram checks on rows with fewer words: a short answer that restates its question "
        "('What is the capital of France?' / 'The capital of France is Paris.') is mostly repeated n-grams (Gopher: 50-word documents).",
    )
    max_symbol_word_ratio: float | None = Field(
        0.1,
        description="Reject rows with more (runs of '#' + ellipses) per word (`high_symbol_ratio`; Gopher: 0.1).",
    )
    min_alpha_word_ratio: float | None = Field(
        0.4,
        description="Reject rows where a smaller share of words contains a letter (`low_alpha_ratio`; Gopher: 0.8, "
        "but arithmetic rows measured down to 0.48 on GSM8K and code is lower still).",
    )
    min_stop_words: int | None = Field(
        2, description="Reject rows with fewer stop-word tokens (`no_stop_words`; Gopher: 2)."
    )
    stop_words: Literal["english", "gopher"] | list[str] = Field(
        "english",
        description="Stop-word list: 'english' (built-in, ~120 function words), 'gopher' (Gopher's 8) or your own words.",
    )
    reject_empty_response: bool = Field(
        True,
        description="Reject instruction rows whose response / last assistant turn is missing or blank (`empty_response`).",
    )
    reject_prompt_equals_response: bool = Field(
        True,
        description="Reject rows whose response equals the prompt up to case and whitespace (`prompt_equals_response`).",
    )
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE),
        description="Regexes (case-insensitive) matched at the start of short responses (`boilerplate_response`); [] turns it off.",
    )
    boilerplate_max_chars: int | None = Field(
        300,
        description="Only responses up to this many characters can be boilerplate, so a long answer that mentions a refusal stays; None: any length.",
    )
    text_skip: list[Check] = Field(default_factory=list, description="Checks not applied to `text` rows.")
    instruction_skip: list[Check] = Field(
        default_factory=list,
        description="Checks not applied to instruction rows (prompt/response or messages).",
    )

    @field_validator("top_ngram_max_fraction", "duplicate_ngram_max_fraction")
    @classmethod
    def _ngram_sizes(cls, v: dict[int, float] | None) -> dict[int, float] | None:
        for n, frac in (v or {}).items():
            if not 2 <= n <= MAX_NGRAM or not 0 < frac <= 1:
                raise ValueError(
                    f"n-gram thresholds need 2 <= n <= {MAX_NGRAM} and 0 < fraction <= 1; got {n}: {frac}"
                )
        return dict(sorted(v.items())) if v else v

    @field_validator("boilerplate_patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                pl.select(pl.lit("").str.contains(p))
            except pl.exceptions.ComputeError as e:
                raise ValueError(f"boilerplate pattern {p!r} is not a valid regex: {e}") from None
        return v

    @field_validator("stop_words")
    @classmethod
    def _single_tokens(cls, v: str | list[str]) -> str | list[str]:
        for word in [] if isinstance(v, str) else v:
            if not is_punctuation_token(word):
                raise ValueError(
                    f"stop word {word!r} is not a single token: tokens are split at spaces and ASCII "
                    'punctuation ("don\'t" is "don" + "t"), so list its parts or drop it'
                )
        return v

    def ngram_sizes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The n of the top and duplicate n-gram checks that are on."""
        return tuple(self.top_ngram_max_fraction or ()), tuple(self.duplicate_ngram_max_fraction or ())

    def stop_word_list(self) -> list[str]:
        """The stop words `stop_words` names."""
        if self.stop_words == "english":
            return sorted(ENGLISH_STOP_WORDS)
        return sorted(GOPHER_STOP_WORDS) if self.stop_words == "gopher" else list(self.stop_words)
