"""Intervals: Wilson and Newcombe against published values, the paired bootstrap against its definition."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from assay.errors import InputError
from assay.evaluate import stats
from assay.evaluate.stats import (
    exp_mean_delta,
    mean_delta,
    paired_bootstrap,
    paired_bootstrap_loop,
    proportion_difference_interval,
    ratio_of_means,
    token_perplexity_ratio,
    wilson_interval,
)


def test_docstring_examples_hold():
    assert doctest.testmod(stats).failed == 0


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [(8, 10, 0.490, 0.943), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (81, 263, 0.2553, 0.3662)],
)
def test_wilson_matches_published_values(successes, n, low, high):
    iv = wilson_interval(successes, n)
    assert iv.estimate == pytest.approx(successes / n)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=6e-4), pytest.approx(high, abs=6e-4))


def test_wilson_widens_with_confidence_and_allows_half_wins():
    assert wilson_interval(8, 10, confidence=0.99).low < wilson_interval(8, 10).low
    assert wilson_interval(7.5, 10).estimate == 0.75
    with pytest.raises(InputError):
        wilson_interval(11, 10)
    with pytest.raises(InputError):
        wilson_interval(0, 0)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
    ],
)
def test_difference_of_proportions_matches_newcombe(counts, low, high):
    iv = proportion_difference_interval(*counts)
    assert iv.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_identical_arrays_give_zero_delta_and_zero_width():
    values = np.random.default_rng(1).normal(size=200)
    iv = paired_bootstrap(values, values.copy())
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert iv.n == 200 and iv.n_resamples == 1000 and iv.confidence == 0.95


def test_a_constant_shift_is_recovered_exactly():
    base = np.random.default_rng(2).uniform(size=300)
    iv = paired_bootstrap(base + 0.25, base)
    assert iv.estimate == pytest.approx(0.25)
    assert (iv.low, iv.high) == (pytest.approx(0.25), pytest.approx(0.25))


def test_bootstrap_is_the_percentile_of_resampled_mean_deltas():
    rng = np.random.default_rng(3)
    cand, base = rng.normal(0.3, 1, 40), rng.normal(0, 1, 40)
    idx = np.random.default_rng(7).integers(0, 40, size=(500, 40))
    deltas = cand[idx].mean(axis=1) - base[idx].mean(axis=1)
    iv = paired_bootstrap(cand, base, n_resamples=500, seed=7, confidence=0.9)
    assert iv.estimate == pytest.approx(cand.mean() - base.mean())
    assert (iv.low, iv.high) == tuple(pytest.approx(v) for v in np.percentile(deltas, [5, 95]))


def test_bootstrap_is_deterministic_per_seed_and_independent_of_chunking(monkeypatch):
    rng = np.random.default_rng(4)
    cand, base = rng.normal(size=97), rng.normal(size=97)
    first = paired_bootstrap(cand, base, seed=11)
    assert paired_bootstrap(cand, base, seed=11) == first
    assert paired_bootstrap(cand, base, seed=12) != first
    monkeypatch.setattr(stats, "_CHUNK_VALUES", 97 * 3)  # chunks of 3 resamples
    assert paired_bootstrap(cand, base, seed=11) == first


def test_loop_and_vectorised_bootstraps_agree():
    rng = np.random.default_rng(5)
    cand, base = rng.exponential(size=60), rng.exponential(size=60)
    vectorised = paired_bootstrap(cand, base, mean_delta, n_resamples=300, seed=3)
    looped = paired_bootstrap_loop(cand, base, lambda c, b: c.mean() - b.mean(), n_resamples=300, seed=3)
    assert looped.estimate == pytest.approx(vectorised.estimate)
    assert (looped.low, looped.high) == (pytest.approx(vectorised.low), pytest.approx(vectorised.high))


def test_a_statistic_that_is_not_a_mean_loops():
    rng = np.random.default_rng(6)
    cand, base = rng.normal(1, 1, 51), rng.normal(0, 1, 51)
    iv = paired_bootstrap_loop(cand, base, lambda c, b: float(np.median(c - b)), n_resamples=200)
    assert iv.estimate == pytest.approx(np.median(cand - base))
    assert iv.low < iv.estimate < iv.high


def test_ratio_statistics():
    rng = np.random.default_rng(8)
    nll_c, nll_b = rng.uniform(2, 3, 80), rng.uniform(2, 3, 80)
    assert paired_bootstrap(nll_c, nll_b, ratio_of_means).estimate == pytest.approx(nll_c.mean() / nll_b.mean())
    ppl = paired_bootstrap(nll_c, nll_b, exp_mean_delta)
    assert ppl.estimate == pytest.approx(np.exp(nll_c.mean() - nll_b.mean()))
    assert ppl.low <= ppl.estimate <= ppl.high


def test_token_weighted_perplexity_ratio():
    rng = np.random.default_rng(9)
    tokens = rng.integers(5, 50, 70)
    cand = np.stack([rng.uniform(2, 3, 70) * tokens, tokens], axis=1)
    base = np.stack([rng.uniform(2, 3, 70) * tokens, tokens], axis=1)
    iv = paired_bootstrap(cand, base, token_perplexity_ratio)
    expected = np.exp(cand[:, 0].sum() / tokens.sum() - base[:, 0].sum() / tokens.sum())
    assert iv.estimate == pytest.approx(expected)
    assert iv.low < iv.estimate < iv.high


def test_interval_covers_the_true_delta_about_as_often_as_promised():
    rng = np.random.default_rng(10)
    covered = 0
    for _ in range(200):
        shared = rng.normal(0, 1, 60)  # item difficulty, shared by both sides
        cand, base = shared + rng.normal(0.2, 0.5, 60), shared + rng.normal(0.0, 0.5, 60)
        iv = paired_bootstrap(cand, base, n_resamples=400, seed=int(rng.integers(1 << 30)))
        covered += iv.low <= 0.2 <= iv.high
    assert 0.88 <= covered / 200 <= 0.99


def test_pairing_removes_shared_noise():
    rng = np.random.default_rng(12)
    shared = rng.normal(0, 5, 100)
    cand, base = shared + 1 + rng.normal(0, 0.1, 100), shared + rng.normal(0, 0.1, 100)
    iv = paired_bootstrap(cand, base)
    assert iv.high - iv.low < 0.2  # unpaired, the shared noise (sd 5) would make it about 3 wide
    assert iv.low > 0.9


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="same items"):
        paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="no items"):
        paired_bootstrap([], [])
    with pytest.raises(InputError, match="confidence"):
        paired_bootstrap([1.0], [1.0], confidence=95)
    with pytest.raises(InputError, match="n_resamples"):
        paired_bootstrap([1.0], [1.0], n_resamples=0)
