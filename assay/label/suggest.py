"""Suggestions for curators, from what curation measured: they inform the review, they must not decide it.

Argilla pre-fills a suggestion in the review form, so a suggestion a curator leaves as it is becomes
their answer. assay therefore suggests what the signals know and no more (`[label.suggest]`):

- `issues`: `pii` when personal data was found (and redacted); `low_quality` / `formatting` when a quality
  check of that kind fired or nearly fired. Score: 1 for found PII; for the others the signal strength
  exp(-m / 0.1) of the row's smallest relative margin m to a threshold of that kind (1 on the threshold,
  0.37 at 10 % inside it), suggested from `issue_min_strength` on.
- `quality`: a rating estimated from the same margins: 2 near a threshold (m < 0.1), 3 when m < 0.4,
  else 4; never 1 (the row passed every check) and never 5 (heuristics cannot tell exemplary). Score: the
  quality score 0.5 + tanh(m) / 2. Margins are relative and a maximum threshold caps them at 1 (a value of
  0), a window such as the default mean word length 2.5-10 at 0.6: clean prose sits near m = 0.55.
- `decision` (off by default): `approve` only far inside every threshold (quality score at least
  `approve_min_quality`) with no issue suggested and no removed copies; `reject` only when an issue's
  strength reaches `reject_min_strength`; nothing in between, where the curator's judgement is the point.

How often curators kept what was suggested is measured by `progress` and recorded by `pull`
(`kept_suggestions`): a share near 100 % on many records is a sign of anchoring, not of good suggestions.
"""

from __future__ import annotations

from typing import Any

from assay.label import signals as S
from assay.label.config import LabelConfig
from assay.label.review import Vote

ISSUE_SIGNALS = ("low_quality", "formatting")


def suggestions(row: dict[str, Any], cfg: LabelConfig, questions: set[str]) -> list[dict[str, Any]]:
    """The suggestions for one row with signal columns (see signals.py), for the questions the dataset has."""
    found = issues(row, cfg)
    out = []
    if cfg.suggest.issues and found and "issues" in questions:
        out.append(_suggestion("issues", [name for name, _ in found], [score for _, score in found], cfg))
    rating = quality_rating(row)
    if cfg.suggest.quality and rating is not None and "quality" in questions:
        out.append(_suggestion("quality", rating, row[S.QUALITY], cfg))
    decided = decision(row, found, cfg) if cfg.suggest.decision and "decision" in questions else None
    if decided is not None:
        out.append(_suggestion("decision", *decided, cfg))
    return out


def issues(row: dict[str, Any], cfg: LabelConfig) -> list[tuple[str, float]]:
    """(issue label, score) for each issue the signals point to and the dataset offers."""
    out = []
    if row[S.PII_ANY] and "pii" in cfg.issues:
        out.append(("pii", 1.0))
    for issue in ISSUE_SIGNALS:
        strength = row.get(S.STRENGTH[issue]) or 0.0
        if issue in cfg.issues and strength >= cfg.suggest.issue_min_strength:
            out.append((issue, round(float(strength), 2)))
    return out


def quality_rating(row: dict[str, Any]) -> int | None:
    """2, 3 or 4 from the quality score (see the module docstring); None when nothing was measured."""
    score = row.get(S.QUALITY)
    if score is None:
        return None
    # score = 0.5 + tanh(m) / 2, so m < 0.1 ⇔ score < 0.5498 and m < 0.4 ⇔ score < 0.6900
    return 2 if score < 0.5498 else (3 if score < 0.6900 else 4)


def decision(row: dict[str, Any], found: list[tuple[str, float]], cfg: LabelConfig) -> tuple[str, float] | None:
    """(decision, score) where the signals are strong either way, else None."""
    strongest = max((score for _, score in found), default=0.0)
    if any(name != "pii" for name, _ in found) and strongest >= cfg.suggest.reject_min_strength:
        return "reject", round(strongest, 2)
    quality = row.get(S.QUALITY)
    copies = (row.get(S.CLUSTER) or 1) > 1
    if not found and not copies and quality is not None and quality >= cfg.suggest.approve_min_quality:
        return "approve", round(float(quality), 2)
    return None


def _suggestion(question: str, value: Any, score: Any, cfg: LabelConfig) -> dict[str, Any]:
    return {"question_name": question, "value": value, "score": score, "agent": cfg.suggestion_agent, "type": "model"}


def kept_suggestions(suggested: dict[str, dict[str, Any]], votes: list[Vote]) -> dict[str, dict[str, Any]]:
    """Per question: how many submitted answers had a suggestion, and the share that kept it as it was."""
    counts: dict[str, list[int]] = {}
    for vote in votes:
        for question, value in suggested.get(vote.record, {}).items():
            answer = _answer(vote, question)
            if answer is _NOT_ASKED:
                continue
            tally = counts.setdefault(question, [0, 0])
            tally[0] += 1
            tally[1] += _same(answer, value)
    return {q: {"answers": n, "kept": k, "share": round(k / n, 3)} for q, (n, k) in sorted(counts.items())}


_NOT_ASKED = object()


def _answer(vote: Vote, question: str) -> Any:
    return {"decision": vote.decision, "quality": vote.quality, "issues": vote.issues}.get(question, _NOT_ASKED)


def _same(answer: Any, suggested: Any) -> bool:
    if isinstance(suggested, list) or isinstance(answer, tuple):
        return set(answer or ()) == set(suggested or ())
    return answer == suggested
