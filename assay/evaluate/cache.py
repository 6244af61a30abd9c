"""Remembered baseline scores: a baseline scored once is not scored again for the next candidate.

Comparing several candidates with the same base model scores that base on the same requests every
time. Its results are a pure function of its weights (the sha256 recorded for it), the scoring
settings that change numbers (dtype, device kind, max length, chat template) and the request, so
`CachedScorer` keeps them in `<workspace>/cache/scores/<key>.jsonl` and only computes what it has
not seen. The key also holds assay's version, so a change to the scoring code starts afresh.

    with sides.baseline() as scorer:    # a CachedScorer around the base under the adapter
        scorer.loglikelihood(requests)  # cached requests are not run again
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assay.evaluate.scoring import GenerationSettings, RollingScore, ScoringSettings
from assay.store.atomic import write_bytes_atomic

SCORING_VERSION = 1  # bump when a change to the scoring layer could change a number


def cache_key(identity: str, settings: ScoringSettings, device: Any) -> str:
    """One cache per scored thing and the settings that change its numbers (batch size does not)."""
    from assay import __version__

    parts = [identity, settings.dtype or "model-dtype", str(getattr(device, "type", device)), str(settings.max_length),
             str(settings.chat_template), __version__, str(SCORING_VERSION)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


class CachedScorer:
    """A Scorer whose results are remembered on disk; everything else is the wrapped scorer's."""

    def __init__(self, scorer: Any, path: Path) -> None:
        self._scorer, self.path = scorer, path
        self._known: dict[str, Any] = _load(path)
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        found = self._through("ll", [json.dumps(r) for r in requests], list(requests), self._scorer.loglikelihood)
        return [(float(lp), bool(greedy)) for lp, greedy in found]

    def rolling_scores(self, texts: Sequence[str]) -> list[RollingScore]:
        found = self._through("rolling", list(texts), list(texts), lambda todo: [list(s.__dict__.values()) for s in self._scorer.rolling_scores(todo)])
        return [RollingScore(*values) for values in found]

    def loglikelihood_rolling(self, texts: Sequence[str]) -> list[float]:
        return [score.logprob for score in self.rolling_scores(texts)]

    def generate(self, requests: Sequence[tuple[str, GenerationSettings]]) -> list[str]:
        keys = [json.dumps([ctx, list(s.until), s.max_new_tokens]) for ctx, s in requests]
        return self._through("gen", keys, list(requests), self._scorer.generate)

    def _through(self, kind: str, keys: list[str], requests: list[Any], compute: Callable[[list[Any]], list[Any]]) -> list[Any]:
        """Cached results where known; the rest computed in one call, remembered, and saved."""
        full = [f"{kind}\0{k}" for k in keys]
        todo = [i for i, k in enumerate(full) if k not in self._known]
        self.hits, self.misses = self.hits + len(full) - len(todo), self.misses + len(todo)
        if todo:
            for i, value in zip(todo, compute([requests[i] for i in todo]), strict=True):
                self._known[full[i]] = value
            self._save()
        return [self._known[k] for k in full]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps([k, v]) + "\n" for k, v in self._known.items())
        write_bytes_atomic(self.path, lines.encode())


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    known = {}
    for line in path.read_text().splitlines():
        try:
            key, value = json.loads(line)
        except (ValueError, TypeError):
            continue  # a damaged line only costs recomputing it
        known[key] = value
    return known
