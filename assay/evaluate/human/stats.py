"""The numbers of a blind comparison: win / tie / loss with intervals, position bias, agreement.

A vote is one rater's preference on one record, already mapped from the blind sides (A, B) to the
candidate and the baseline. The win rate with ties split counts a tie as half a win, so 0.5 means
"as good as the baseline"; its interval resamples records (a record's votes move together), so
several raters of one record do not count as independent evidence.

    summary = summarise(votes)      # votes: [Vote(record, rater, outcome, chose, ...)]
    summary["win_rate"]             # {"estimate", "low", "high", "n"}
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.evaluate.stats import wilson_interval

SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


@dataclass(frozen=True)
class Vote:
    """One rater's answer on one record, with the blind side it chose (A, B or tie)."""

    record: str
    rater: str
    outcome: str  # "win" | "tie" | "loss", for the candidate
    chose: str  # "A" | "B" | "tie"
    category: str | None = None
    rating_candidate: int | None = None
    rating_baseline: int | None = None
    comment: str | None = None


def summarise(votes: Sequence[Vote], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every number of the comparison, overall."""
    counts = Counter(v.outcome for v in votes)
    n = len(votes)
    rates = {k: _proportion(counts[k], n, confidence) for k in ("win", "tie", "loss")}
    return {
        "votes": n,
        "records": len({v.record for v in votes}),
        "raters": sorted({v.rater for v in votes}),
        "rates": rates,
        "win_rate": win_rate(votes, confidence=confidence, resamples=resamples, seed=seed),
        "ratings": ratings(votes),
        "position_bias": position_bias(votes, confidence=confidence),
    }


def _proportion(k: int, n: int, confidence: float) -> dict[str, float | int | None]:
    if n == 0:
        return {"estimate": None, "low": None, "high": None, "n": 0}
    interval = wilson_interval(k, n, confidence=confidence)
    return {"estimate": k / n, "low": interval.low, "high": interval.high, "n": n}


def win_rate(votes: Sequence[Vote], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean of win = 1, tie = 0.5, loss = 0 over votes, with a percentile bootstrap over records."""
    by_record: dict[str, list[float]] = defaultdict(list)
    for v in votes:
        by_record[v.record].append(SCORE[v.outcome])
    if not by_record:
        return {"estimate": None, "low": None, "high": None, "n": 0}
    sums = np.array([sum(s) for s in by_record.values()])
    sizes = np.array([len(s) for s in by_record.values()], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"estimate": float(sums.sum() / sizes.sum()), "low": float(low), "high": float(high), "n": int(sizes.sum()),
            "records": len(sums)}


def ratings(votes: Sequence[Vote]) -> dict[str, Any]:
    """Mean 1–5 rating of each side over the votes that rated both."""
    both = [(v.rating_candidate, v.rating_baseline) for v in votes if v.rating_candidate and v.rating_baseline]
    if not both:
        return {"candidate": None, "baseline": None, "n": 0}
    c, b = np.array(both, dtype=float).T
    return {"candidate": float(c.mean()), "baseline": float(b.mean()), "delta": float((c - b).mean()), "n": len(both)}


def position_bias(votes: Sequence[Vote], *, confidence: float = 0.95) -> dict[str, Any]:
    """How often the side shown as A is chosen (ties left out), overall and per rater; 0.5 is no bias.

    A and B are assigned at random per record, so a rater who prefers a position (always A) shows here
    whatever the models are like.
    """
    def share(group: Sequence[Vote]) -> dict[str, Any]:
        decided = [v for v in group if v.chose in ("A", "B")]
        return _proportion(sum(v.chose == "A" for v in decided), len(decided), confidence)

    per_rater: dict[str, list[Vote]] = defaultdict(list)
    for v in votes:
        per_rater[v.rater].append(v)
    return {"chose_a": share(votes), "per_rater": {r: share(g) for r, g in sorted(per_rater.items())}}


def per_category(votes: Sequence[Vote], **kwargs: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Vote]] = defaultdict(list)
    for v in votes:
        if v.category:
            groups[v.category].append(v)
    return {name: {"win_rate": win_rate(group, **kwargs), "votes": len(group)} for name, group in sorted(groups.items())}


def disputed(votes: Sequence[Vote], limit: int = 10) -> list[dict[str, Any]]:
    """Records whose raters disagreed most (most distinct outcomes, then most votes), with who said what."""
    by_record: dict[str, list[Vote]] = defaultdict(list)
    for v in votes:
        by_record[v.record].append(v)
    split = [(len({v.outcome for v in vs}), len(vs), rid, vs) for rid, vs in by_record.items() if len({v.outcome for v in vs}) > 1]
    split.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [{"record": rid, "votes": {v.rater: v.outcome for v in vs},
             "comments": {v.rater: v.comment for v in vs if v.comment}} for _, _, rid, vs in split[:limit]]
