"""Remembered baseline scores: the same answers as scoring again, computed once."""

from __future__ import annotations

from assay.evaluate.cache import CachedScorer, cache_key
from assay.evaluate.scoring import GenerationSettings, RollingScore, ScoringSettings


class CountingScorer:
    """A stand-in for `Scorer` behind the same three primitives, counting what it was asked."""

    settings = ScoringSettings()
    device = "cpu"

    def __init__(self) -> None:
        self.asked: list[int] = []

    def loglikelihood(self, requests):
        self.asked.append(len(requests))
        return [(-float(len(c) + len(x)), len(x) % 2 == 0) for c, x in requests]

    def rolling_scores(self, texts):
        self.asked.append(len(texts))
        return [RollingScore.of(t, -1.5 * len(t), len(t.split())) for t in texts]

    def generate(self, requests):
        self.asked.append(len(requests))
        return [f"{c[::-1]}/{s.max_new_tokens}" for c, s in requests]


def test_cached_results_equal_fresh_ones_and_only_new_requests_are_scored(tmp_path):
    inner = CountingScorer()
    path = tmp_path / "scores" / "k.jsonl"
    first = CachedScorer(inner, path)
    ll = first.loglikelihood([("a", " b"), ("ctx", " cont")])
    rolled = first.rolling_scores(["one two", "three"])
    gen = first.generate([("abc", GenerationSettings(max_new_tokens=4)), ("abc", GenerationSettings(max_new_tokens=5))])
    again = CachedScorer(CountingScorer(), path)  # a later run: read from disk
    assert again.loglikelihood([("ctx", " cont"), ("a", " b"), ("new", " one")]) == [ll[1], ll[0], (-7.0, True)]
    assert again.rolling_scores(["three", "one two"]) == [rolled[1], rolled[0]]
    assert again.generate([("abc", GenerationSettings(max_new_tokens=5))]) == [gen[1]]
    assert again._scorer.asked == [1] and (again.hits, again.misses) == (5, 1)
    assert inner.asked == [2, 2, 2]


def test_the_key_changes_with_what_changes_numbers():
    base = cache_key("base:abc", ScoringSettings(), "cpu")
    assert base == cache_key("base:abc", ScoringSettings(batch_size=64), "cpu"), "batch size does not"
    for other in (cache_key("base:abd", ScoringSettings(), "cpu"), cache_key("base:abc", ScoringSettings(dtype="bfloat16"), "cpu"),
                  cache_key("base:abc", ScoringSettings(), "cuda"), cache_key("base:abc", ScoringSettings(chat_template=True), "cpu")):
        assert other != base
