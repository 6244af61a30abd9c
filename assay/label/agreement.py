"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa and Krippendorff's alpha, in numpy.

Each function returns NaN where the statistic is undefined (no overlap, or no variation at all), so a
caller can tell "no evidence" from "no agreement". The review-level summary (`agreement_report`) turns
per-question ratings into these numbers.

    >>> round(cohen_kappa(["y", "y", "n", "n"], ["y", "n", "n", "n"]), 3)
    0.5
    >>> round(krippendorff_alpha([[1, 2, 3], [1, 2, 2]], level="interval"), 3)
    0.706
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval", "ratio"]
NAN = float("nan")


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> float:
    """Cohen's kappa of two raters over the items both rated (None = not rated)."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    if not pairs:
        return NAN
    cats = sorted({v for pair in pairs for v in pair}, key=repr)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    table /= table.sum()
    observed = np.trace(table)
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    return NAN if math.isclose(expected, 1.0) else float((observed - expected) / (1 - expected))


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa from an items × categories matrix of how many raters chose each category.

    Items with fewer than two ratings are skipped. Rows may have different rater counts; with a
    constant count this is exactly Fleiss (1971).
    """
    table = np.asarray(counts, dtype=float)
    table = table[table.sum(axis=1) >= 2] if table.ndim == 2 else table
    if table.ndim != 2 or table.shape[0] == 0:
        return NAN
    n = table.sum(axis=1)
    per_item = (np.square(table).sum(axis=1) - n) / (n * (n - 1))
    shares = table.sum(axis=0) / n.sum()
    expected = float(np.square(shares).sum())
    return NAN if math.isclose(expected, 1.0) else float((per_item.mean() - expected) / (1 - expected))


def _coincidences(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values and Krippendorff's coincidence matrix of a coders × units matrix."""
    values = np.unique(data[~np.isnan(data)])
    units = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
    per_unit = np.stack([(units == v).sum(axis=0) for v in values], axis=1).astype(float)  # units × values
    weights = per_unit / (per_unit.sum(axis=1, keepdims=True) - 1)
    return values, per_unit.T @ weights - np.diag(weights.sum(axis=0))


def _distances(values: np.ndarray, totals: np.ndarray, level: Level) -> np.ndarray:
    """Squared difference δ² between every pair of values for a level of measurement."""
    a, b = values[:, None], values[None, :]
    if level == "nominal":
        return (a != b).astype(float)
    if level == "interval":
        return np.square(a - b)
    if level == "ratio":
        total = a + b
        return np.divide(np.square(a - b), np.square(total), out=np.zeros_like(total, dtype=float), where=total != 0)
    if level == "ordinal":
        cum = np.cumsum(totals)
        ranks = np.arange(len(values))
        lo, hi = np.minimum(ranks[:, None], ranks[None, :]), np.maximum(ranks[:, None], ranks[None, :])
        between = cum[hi] - np.concatenate([[0.0], cum])[lo]
        return np.square(between - (totals[lo] + totals[hi]) / 2)
    raise ValueError(f"unknown level of measurement {level!r}")


def krippendorff_alpha(data: np.ndarray | Sequence[Sequence[float | None]], level: Level = "nominal") -> float:
    """Krippendorff's alpha of a coders × units matrix of numeric codes (NaN or None = missing).

    Nominal data needs numeric codes too: map labels to integers first (`encode`).
    """
    matrix = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    if matrix.ndim != 2 or ((~np.isnan(matrix)).sum(axis=0) >= 2).sum() == 0:
        return NAN
    values, coincidence = _coincidences(matrix)
    totals = coincidence.sum(axis=1)
    n = totals.sum()
    delta = _distances(values, totals, level)
    expected = float(totals @ delta @ totals)
    if expected == 0:
        return NAN
    return float(1 - (n - 1) * float((coincidence * delta).sum()) / expected)


def encode(matrix: Sequence[Sequence[Hashable | None]]) -> np.ndarray:
    """Labels → integer codes (NaN for None), for the nominal level of `krippendorff_alpha`."""
    labels = sorted({v for row in matrix for v in row if v is not None}, key=repr)
    index = {label: float(i) for i, label in enumerate(labels)}
    return np.array([[np.nan if v is None else index[v] for v in row] for row in matrix], dtype=float)


def percent_agreement(matrix: Sequence[Sequence[Hashable | None]]) -> float:
    """Share of agreeing rater pairs over units rated at least twice (coders × units)."""
    agree = pairs = 0
    for unit in zip(*matrix, strict=True):
        votes = [v for v in unit if v is not None]
        for i in range(len(votes)):
            for j in range(i + 1, len(votes)):
                agree += votes[i] == votes[j]
                pairs += 1
    return agree / pairs if pairs else NAN


def category_counts(matrix: Sequence[Sequence[Hashable | None]]) -> np.ndarray:
    """coders × units labels → the units × categories count matrix Fleiss' kappa reads."""
    labels = sorted({v for row in matrix for v in row if v is not None}, key=repr)
    units = list(zip(*matrix, strict=True))
    return np.array([[sum(v == label for v in unit) for label in labels] for unit in units], dtype=float)


def nominal_summary(matrix: Sequence[Sequence[Hashable | None]]) -> dict[str, float | int | None]:
    """Every agreement number for one nominal question (coders × units; None = no rating)."""
    rated_twice = sum(1 for unit in zip(*matrix, strict=True) if sum(v is not None for v in unit) >= 2)
    out: dict[str, float | int | None] = {
        "level": "nominal",  # type: ignore[dict-item]
        "units": rated_twice,
        "percent_agreement": _clean(percent_agreement(matrix)),
        "krippendorff_alpha": _clean(krippendorff_alpha(encode(matrix), "nominal")),
        "fleiss_kappa": _clean(fleiss_kappa(category_counts(matrix))) if matrix else None,
    }
    if len(matrix) == 2:
        out["cohen_kappa"] = _clean(cohen_kappa(matrix[0], matrix[1]))
    return out


def rating_summary(matrix: Sequence[Sequence[float | None]]) -> dict[str, float | int | None]:
    """Agreement numbers for a rating question: Krippendorff's alpha at the ordinal and interval levels."""
    rated_twice = sum(1 for unit in zip(*matrix, strict=True) if sum(v is not None for v in unit) >= 2)
    return {
        "level": "ordinal",  # type: ignore[dict-item]
        "units": rated_twice,
        "percent_agreement": _clean(percent_agreement(matrix)),
        "krippendorff_alpha": _clean(krippendorff_alpha(matrix, "ordinal")),
        "krippendorff_alpha_interval": _clean(krippendorff_alpha(matrix, "interval")),
    }


def _clean(value: float) -> float | None:
    """NaN (undefined) becomes None so that reports stay valid JSON."""
    return None if value is None or math.isnan(value) else round(float(value), 4)


def overall(per_question: Mapping[str, Mapping[str, object]]) -> float | None:
    """Mean Krippendorff's alpha over the questions where it is defined."""
    alphas = [q["krippendorff_alpha"] for q in per_question.values() if q.get("krippendorff_alpha") is not None]
    return round(float(np.mean(alphas)), 4) if alphas else None  # type: ignore[arg-type]
