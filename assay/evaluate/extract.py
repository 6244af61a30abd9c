"""Answer extraction: the part of a generation (or a reference) that a task metric compares.

A GSM8K-style answer ends in "#### 42" after its working; a chat model may write "The answer is
$1,234.50." Comparing whole texts would score both as wrong, so each task says how to extract the
answer. Nothing found gives the empty string, and `extract_answers` reports where that happened
(a metric then scores the example as a miss instead of the row disappearing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A number: not glued to a word before it ("H2O" has none), a "-" sign only where it cannot be a
# hyphen ("5-3" is 5 and 3), thousands separators only in groups of three, an optional decimal part.
# A "." that ends a sentence is not part of the number, and no match starts inside another number
# ("1.2.3" gives 1.2 only). Fractions and exponents are not read as one number ("3/4" gives 4).
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")


class ExtractConfig(BaseModel):
    """How to extract the answer from a text before scoring it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["whole", "last_number", "regex", "first_line"] = Field(
        "whole",
        description=(
            "`whole`: the text without surrounding whitespace; `last_number`: the last number in the "
            'text, normalised ("$1,234.50" -> "1234.5", "#### 42" -> "42"); `regex`: the one group of '
            "`pattern` at its first match; `first_line`: the first line that is not blank."
        ),
    )
    pattern: str | None = Field(
        None,
        description=(
            'Regular expression (Python syntax) with exactly one group, e.g. "#### (.+)"; used only '
            "and required when kind = \"regex\". Add (?i) at its start to ignore case."
        ),
    )

    @model_validator(mode="after")
    def _pattern_fits_kind(self) -> ExtractConfig:
        if self.kind != "regex":
            if self.pattern is not None:
                raise ValueError(f'`pattern` is only used when kind = "regex" (kind is "{self.kind}")')
            return self
        if self.pattern is None:
            raise ValueError('kind = "regex" needs a `pattern` with one group, e.g. "#### (.+)"')
        try:
            groups = re.compile(self.pattern).groups
        except re.error as exc:
            raise ValueError(f"`pattern` {self.pattern!r} is not a valid regular expression: {exc}") from exc
        if groups != 1:
            raise ValueError(
                f"`pattern` {self.pattern!r} has {groups} groups; it needs exactly one around the answer "
                "(use (?:...) for the others)"
            )
        return self


@dataclass(frozen=True)
class Extracted:
    """Extracted answers in input order, and the positions where nothing was found (answer "")."""

    answers: list[str]
    missing: list[int]


def normalize_number(text: str) -> str:
    """A number as `last_number` finds it, written plainly: no thousands separators, no "+", no
    needless zeros, no trailing "."; "" when `text` has no digit.

    >>> [normalize_number(s) for s in ["1,234.50", "-0.0", "007", ".5", "42."]]
    ['1234.5', '0', '7', '0.5', '42']
    """
    if not any(ch.isdigit() for ch in text):
        return ""
    text = text.replace(",", "").strip().rstrip(".")
    integer, _, fraction = text.lstrip("+-").partition(".")
    fraction = fraction.rstrip("0")
    number = (integer.lstrip("0") or "0") + (f".{fraction}" if fraction else "")
    return "-" + number if text.startswith("-") and number != "0" else number


def extract_answer(text: str, config: ExtractConfig) -> str:
    """The answer in `text` under `config`, or "" when there is none.

    >>> extract_answer("She pays 3 * 4 = <<3*4=12>>12 dollars.\\n#### 12", ExtractConfig(kind="last_number"))
    '12'
    """
    if config.kind == "whole":
        return text.strip()
    if config.kind == "first_line":
        return next((line.strip() for line in text.splitlines() if line.strip()), "")
    if config.kind == "last_number":
        numbers = _NUMBER.findall(text)
        return normalize_number(numbers[-1]) if numbers else ""
    found = re.search(config.pattern or "", text)
    return (found.group(1) or "").strip() if found else ""


def extract_answers(texts: Sequence[str], config: ExtractConfig) -> Extracted:
    """`extract_answer` over many texts, counting the ones with no answer."""
    answers = [extract_answer(text, config) for text in texts]
    return Extracted(answers=answers, missing=[i for i, a in enumerate(answers) if not a])
