"""What every task metric returns, and the one place that checks predictions against references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assay.errors import InputError

References = Sequence[str] | Sequence[Sequence[str]]


@dataclass(frozen=True)
class MetricResult:
    """A metric over a list of examples: the corpus value and one value per example, in input order.

    `corpus` is the number a report shows. For most metrics it is the mean of `per_example`; for
    corpus BLEU it is not (BLEU pools n-gram counts over the corpus), so `per_example` holds sentence
    BLEU and `stats` holds each example's sufficient statistics, from which the corpus value of any
    resample of the examples can be recomputed exactly (see `REGISTRY[name].corpus_from_stats`).
    """

    name: str
    corpus: float
    per_example: list[float]
    stats: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.per_example)


def reference_lists(predictions: Sequence[str], references: References, metric: str) -> list[list[str]]:
    """References as one list of strings per prediction (a single string becomes a list of one).

    Several references per prediction are allowed (the score is the best over them, as SQuAD and
    rouge-score define it); the lengths must match and no example may be left without a reference.
    """
    if isinstance(predictions, str) or isinstance(references, str):
        raise InputError(f"{metric}: predictions and references must be lists of strings, not one string")
    if len(predictions) != len(references):
        raise InputError(
            f"{metric}: {len(predictions)} predictions but {len(references)} references",
            hint="pass one reference (or one list of references) per prediction, in the same order",
        )
    if not predictions:
        raise InputError(f"{metric}: no predictions to score", hint="the evaluation file or split is empty")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise InputError(f"{metric}: example {empty[0]} has no reference ({len(empty)} such examples)")
    return refs
