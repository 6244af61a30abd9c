"""Multiple-choice scoring as lm-eval's `output_type: multiple_choice` tasks define it.

Each choice is scored as the continuation of the question after the target delimiter (" ", lm-eval's
default; "" when the scorer applies a chat template, as lm-eval does then). Per item:

- `pred`: argmax of the summed log-probabilities (lm-eval `acc`);
- `pred_norm`: argmax of log-probability / length of the choice in **characters** (lm-eval `acc_norm`:
  `len(choice)` on the Python string, without the delimiter);
- `pred_bytes`: argmax of log-probability / length in UTF-8 bytes (lm-eval `acc_bytes`).

Ties go to the first choice (numpy argmax). Items are plain dicts `{question, choices, answer}`; reading
and validating files is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.evaluate.scoring import Scorer

DEFAULT_DELIMITER = " "


@dataclass(frozen=True)
class ChoiceResult:
    """One item's outcome, kept per item so a candidate and its baseline can be paired."""

    index: int
    answer: int
    logprobs: tuple[float, ...]
    is_greedy: tuple[bool, ...]
    pred: int
    pred_norm: int
    pred_bytes: int

    @property
    def acc(self) -> float:
        return float(self.pred == self.answer)

    @property
    def acc_norm(self) -> float:
        return float(self.pred_norm == self.answer)

    @property
    def acc_bytes(self) -> float:
        return float(self.pred_bytes == self.answer)


def score_multiple_choice(
    scorer: Scorer, items: Sequence[Mapping[str, Any]], *, target_delimiter: str | None = None
) -> list[ChoiceResult]:
    """Score every choice of every item in one batched call; results in the items' order.

    Example: `score_multiple_choice(scorer, [{"question": "2+2 =", "choices": ["4", "5"], "answer": 0}])`.
    """
    delimiter = _delimiter(scorer, target_delimiter)
    requests = [(item["question"], f"{delimiter}{choice}") for item in items for choice in item["choices"]]
    scores = iter(scorer.loglikelihood(requests))
    results = []
    for index, item in enumerate(items):
        choices = list(item["choices"])
        logprobs, greedy = zip(*(next(scores) for _ in choices), strict=True)
        results.append(_decide(index, int(item["answer"]), choices, list(logprobs), list(greedy)))
    return results


def summarise(results: Sequence[ChoiceResult]) -> dict[str, float]:
    """Means over items (lm-eval aggregates acc, acc_norm and acc_bytes with `mean`)."""
    n = max(len(results), 1)
    return {name: sum(getattr(r, name) for r in results) / n for name in ("acc", "acc_norm", "acc_bytes")}


def _delimiter(scorer: Scorer, target_delimiter: str | None) -> str:
    if target_delimiter is not None:
        return target_delimiter
    return "" if scorer.settings.chat_template else DEFAULT_DELIMITER


def _decide(index: int, answer: int, choices: list[str], logprobs: list[float], greedy: list[bool]) -> ChoiceResult:
    chars = [len(c) for c in choices]
    nbytes = [len(c.encode("utf-8")) for c in choices]
    return ChoiceResult(
        index=index, answer=answer, logprobs=tuple(logprobs), is_greedy=tuple(greedy),
        pred=_argmax(logprobs),
        pred_norm=_argmax([lp / n if n else float("-inf") for lp, n in zip(logprobs, chars, strict=True)]),
        pred_bytes=_argmax([lp / n if n else float("-inf") for lp, n in zip(logprobs, nbytes, strict=True)]),
    )


def _argmax(values: list[float]) -> int:
    """Index of the largest value, the first on ties (as numpy.argmax)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))
