"""Intervals for comparing a candidate with its baseline: paired bootstrap, Wilson, Newcombe.

Every check scores the candidate and the baseline on the same items, so comparisons resample items
(pairs), never the two sides independently: the noise that items share cancels in the delta.
Bootstraps are percentile intervals, seeded and deterministic: the same inputs, statistic, seed
and number of resamples always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from assay.errors import InputError

# A vectorised statistic of two paired samples: arrays of shape (k, n, ...) (k resamples of the n
# items, trailing axes as given) in, shape (k,) out.
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Resamples are drawn in chunks so that one chunk's gathered values stay near this many numbers
# (80 MB of float64) however many items there are.
_CHUNK_VALUES = 10_000_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at `confidence`."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    method: str
    n_resamples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_delta(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """mean(candidate) - mean(baseline) over the items axis."""
    return candidate.mean(axis=1) - baseline.mean(axis=1)


def ratio_of_means(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """mean(candidate) / mean(baseline), e.g. the ratio of mean losses."""
    return candidate.mean(axis=1) / baseline.mean(axis=1)


def exp_mean_delta(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """exp(mean(candidate) - mean(baseline)): the perplexity ratio from per-item mean NLLs."""
    return np.exp(candidate.mean(axis=1) - baseline.mean(axis=1))


def token_perplexity_ratio(candidate: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Token-weighted perplexity ratio from items of shape (..., 2): (summed NLL, token count).

    exp(sum NLL_c / sum tokens_c - sum NLL_b / sum tokens_b): longer texts weigh more, as in the
    rolling log-likelihood perplexity lm-eval reports.
    """
    c, b = candidate.sum(axis=1), baseline.sum(axis=1)
    return np.exp(c[:, 0] / c[:, 1] - b[:, 0] / b[:, 1])


def paired_bootstrap(
    candidate: Any,
    baseline: Any,
    statistic: Statistic = mean_delta,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """A statistic of two paired samples with a percentile bootstrap interval, vectorised in numpy.

    `candidate[i]` and `baseline[i]` belong to the same item (extra trailing axes are allowed,
    e.g. (NLL, tokens) per item); each resample draws n items with replacement and keeps the pairs.
    The statistic sees arrays of shape (k, n, ...) and returns k values, so any statistic, a mean or
    not, costs one call per chunk of resamples. Memory stays bounded by chunking.

    >>> iv = paired_bootstrap([1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0], seed=0)
    >>> (iv.estimate, iv.low <= iv.estimate <= iv.high)
    (0.5, True)
    """
    cand, base = _paired_arrays(candidate, baseline)
    _check_settings(confidence, n_resamples)
    estimate = float(np.asarray(statistic(cand[None], base[None])).reshape(-1)[0])
    draws = [np.asarray(statistic(cand[idx], base[idx])).reshape(-1) for idx in _resample_indices(cand, n_resamples, seed)]
    return _percentile_interval(estimate, np.concatenate(draws), confidence, len(cand))


def paired_bootstrap_loop(
    candidate: Any,
    baseline: Any,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Interval:
    """Like `paired_bootstrap`, for a statistic that only takes one sample at a time.

    The statistic gets arrays of shape (n, ...) and returns a float; it is called n_resamples + 1
    times, so the cost is that many full computations (recomputing corpus BLEU from the strings
    this way re-tokenises everything each time: prefer a vectorised statistic over sufficient
    statistics, as `assay.evaluate.metrics.compare` does). The same seed draws the same resamples as
    `paired_bootstrap`, so both give the same interval for the same statistic.
    """
    cand, base = _paired_arrays(candidate, baseline)
    _check_settings(confidence, n_resamples)
    estimate = float(statistic(cand, base))
    draws = [float(statistic(cand[i], base[i])) for idx in _resample_indices(cand, n_resamples, seed) for i in idx]
    return _percentile_interval(estimate, np.asarray(draws), confidence, len(cand))


def _paired_arrays(candidate: Any, baseline: Any) -> tuple[np.ndarray, np.ndarray]:
    cand, base = np.asarray(candidate), np.asarray(baseline)
    if cand.ndim == 0 or base.ndim == 0 or len(cand) != len(base):
        raise InputError(
            f"paired bootstrap: candidate has {cand.shape} values and baseline {base.shape}",
            hint="score candidate and baseline on the same items, in the same order",
        )
    if len(cand) == 0:
        raise InputError("paired bootstrap: no items to compare", hint="the evaluation set is empty")
    return cand, base


def _check_settings(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1 (got {confidence})", hint="e.g. 0.95")
    if n_resamples < 1:
        raise InputError(f"n_resamples must be at least 1 (got {n_resamples})", hint="e.g. 1000")


def _resample_indices(items: np.ndarray, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays of shape (chunk, n), n_resamples rows in all.

    numpy's generator yields the same stream whatever the chunk shapes, so chunking does not change
    which resamples are drawn (a test checks this).
    """
    n = len(items)
    per_item = max(1, int(np.prod(items.shape[1:])))
    chunk = max(1, _CHUNK_VALUES // (n * per_item))
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_resamples - start), n))


def _percentile_interval(estimate: float, draws: np.ndarray, confidence: float, n: int) -> Interval:
    alpha = 1.0 - confidence
    low, high = np.percentile(draws, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(
        estimate=estimate,
        low=float(low),
        high=float(high),
        confidence=confidence,
        n=n,
        method="paired_bootstrap_percentile",
        n_resamples=len(draws),
    )


def wilson_interval(successes: float, n: int, *, confidence: float = 0.95) -> Interval:
    """The Wilson score interval for a proportion (e.g. a win rate; a tie may count as 0.5).

    >>> iv = wilson_interval(8, 10)
    >>> (round(iv.low, 3), round(iv.high, 3))
    (0.49, 0.943)
    """
    _check_settings(confidence, 1)
    if n <= 0 or not 0 <= successes <= n:
        raise InputError(f"a proportion needs 0 <= successes <= n and n > 0 (got {successes} of {n})")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), confidence, n, "wilson")


def proportion_difference_interval(
    successes_a: float, n_a: int, successes_b: float, n_b: int, *, confidence: float = 0.95
) -> Interval:
    """p_a - p_b for two independent samples: Newcombe's hybrid score interval (from two Wilsons).

    For paired proportions (both models on the same items) use `paired_bootstrap` on 0/1 values.
    """
    a = wilson_interval(successes_a, n_a, confidence=confidence)
    b = wilson_interval(successes_b, n_b, confidence=confidence)
    delta = a.estimate - b.estimate
    low = delta - math.hypot(a.estimate - a.low, b.high - b.estimate)
    high = delta + math.hypot(a.high - a.estimate, b.estimate - b.low)
    return Interval(delta, low, high, confidence, n_a + n_b, "newcombe_hybrid_score")
