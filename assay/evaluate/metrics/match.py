"""Exact match and token F1 as the SQuAD v1.1 evaluation script defines them, and plain accuracy.

The per-example functions are the SQuAD v1.1 script's, line for line: answers are normalised
(lower case, punctuation removed, the articles a/an/the removed, whitespace collapsed), EM compares
the normalised strings and F1 the bags of normalised tokens; with several references the best one
counts. Two differences in presentation only: values are fractions in [0, 1] (the script prints
100 × the mean), and v1.1 is kept where v2.0 differs (v1.1 gives F1 = 0 when both answers
normalise to nothing; v2.0 gives 1).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from assay.evaluate.metrics.result import MetricResult, References, reference_lists

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 when the two answers are equal after `normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Token F1 between the normalised answers (SQuAD v1.1: 0.0 when no token is shared)."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    num_same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_over_references(
    name: str, fn: Callable[[str, str], float], predictions: Sequence[str], references: References
) -> MetricResult:
    refs = reference_lists(predictions, references, name)
    values = [max(fn(pred, ref) for ref in options) for pred, options in zip(predictions, refs, strict=True)]
    return MetricResult(name=name, corpus=sum(values) / len(values), per_example=values)


def exact_match(predictions: Sequence[str], references: References) -> MetricResult:
    """SQuAD exact match per example (best over references) and its mean.

    >>> exact_match(["The Eiffel Tower!"], [["eiffel tower", "Paris"]]).corpus
    1.0
    """
    return _best_over_references("exact_match", exact_match_score, predictions, references)


def token_f1(predictions: Sequence[str], references: References) -> MetricResult:
    """SQuAD token F1 per example (best over references) and its mean.

    >>> round(token_f1(["the cat sat"], ["a cat sat down"]).corpus, 3)
    0.8
    """
    return _best_over_references("token_f1", f1_score, predictions, references)


def accuracy(predictions: Sequence[str], references: References) -> MetricResult:
    """1.0 where the prediction equals a reference exactly (no normalisation), and the mean.

    This is `evaluate`'s accuracy (scikit-learn's `accuracy_score`) on strings; normalise through
    answer extraction (`assay.evaluate.extract`) first, e.g. the last number of a GSM8K answer.
    """

    def equal(prediction: str, reference: str) -> float:
        return float(prediction == reference)

    return _best_over_references("accuracy", equal, predictions, references)
