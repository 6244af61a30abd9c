"""Reviews as data: submitted votes → per-row outcomes by policy, and agreement between annotators.

Pure functions over plain values (no server), so every rule here is unit-tested on tiny inputs.

Outcome rules: `approve` and `edit` both vote to keep a row, `reject` to drop it. A row needs
`required` submitted votes (the policy's N for min-votes:N, else the dataset's `min_submitted`);
unanimous keeps or drops only when every vote agrees; majority and min-votes:N need more votes on one
side than the other. A kept row takes the most common corrected text (latest on a tie) when at least
half of its keep votes are edits with a correction.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.label import agreement as A
from assay.label.config import Policy

KEEP, REJECT = ("approve", "edit"), "reject"
NOT_REVIEWED, REJECTED, NO_CONSENSUS = "not_reviewed", "rejected_by_review", "no_consensus"


@dataclass(frozen=True)
class Vote:
    """One submitted response of one annotator on one record."""

    record: str
    annotator: str
    decision: str | None
    corrected: str | None = None
    quality: int | None = None
    issues: tuple[str, ...] = ()
    submitted_at: str = ""


@dataclass
class Outcome:
    """What the votes decided for one row; `reason` is set for rows that do not make it into the version."""

    id: str
    kept: bool
    decision: str | None
    reason: str | None = None
    detail: str | None = None
    corrected: str | None = None
    votes: list[Vote] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The review_* columns of this row."""
        ratings = [v.quality for v in self.votes if v.quality is not None]
        tags = Counter(tag for v in self.votes for tag in v.issues)
        return {
            "review_decision": self.decision,
            "review_annotators": [v.annotator for v in self.votes],
            "review_votes": [{"annotator": v.annotator, "decision": v.decision} for v in self.votes],
            "review_submitted_at": max((v.submitted_at for v in self.votes), default=None),
            "review_quality": round(sum(ratings) / len(ratings), 3) if ratings else None,
            "review_issues": sorted(t for t, n in tags.items() if 2 * n >= len(self.votes)),
        }


def vote_from_response(record: str, annotator: str, response: dict) -> Vote:
    """A Vote from one response of argilla-server's REST representation."""
    values = {q: (v or {}).get("value") for q, v in (response.get("values") or {}).items()}
    corrected = values.get("corrected_response") or values.get("corrected_text")
    return Vote(
        record=record,
        annotator=annotator,
        decision=values.get("decision"),
        corrected=corrected if isinstance(corrected, str) and corrected.strip() else None,
        quality=values.get("quality"),
        issues=tuple(sorted(values.get("issues") or [])),
        submitted_at=response.get("updated_at") or response.get("inserted_at") or "",
    )


def decide(row_id: str, votes: list[Vote], policy: Policy, required: int) -> Outcome:
    """One row's outcome from its submitted votes."""
    votes = sorted(votes, key=lambda v: (v.submitted_at, v.annotator))
    if not votes:
        return Outcome(row_id, False, None, NOT_REVIEWED, "no submitted response")
    if len(votes) < required:
        return Outcome(row_id, False, None, NO_CONSENSUS, f"{len(votes)} of {required} required votes", votes=votes)
    keep = sum(v.decision in KEEP for v in votes)
    drop = sum(v.decision == REJECT for v in votes)
    tally = f"keep {keep} : reject {drop}"
    if policy.kind == "unanimous":
        verdict = "keep" if drop == 0 and keep else ("drop" if keep == 0 and drop else None)
    else:
        verdict = "keep" if keep > drop else ("drop" if drop > keep else None)
    if verdict is None:
        return Outcome(row_id, False, None, NO_CONSENSUS, tally, votes=votes)
    if verdict == "drop":
        return Outcome(row_id, False, REJECT, REJECTED, tally, votes=votes)
    corrected = correction(votes, keep)
    return Outcome(row_id, True, "edit" if corrected else "approve", None, tally, corrected, votes)


def correction(votes: list[Vote], keep: int) -> str | None:
    """The corrected text to apply, when at least half of the keep votes are edits with a text."""
    edits = [v for v in votes if v.decision == "edit" and v.corrected]
    if not edits or 2 * len(edits) < keep:
        return None
    counts = Counter(v.corrected for v in edits)
    best = max(counts.values())
    return [v.corrected for v in edits if counts[v.corrected] == best][-1]  # votes are in time order: latest wins


def outcomes(row_ids: list[str], votes: list[Vote], policy: Policy, required: int | Callable[[str], int]) -> list[Outcome]:
    """An outcome for every row id (rows without votes are not reviewed); `required` may differ per row
    (a sampled overlap), given as a function of the row id."""
    by_row: dict[str, list[Vote]] = {}
    for v in votes:
        by_row.setdefault(v.record, []).append(v)
    need = required if callable(required) else (lambda _: required)
    return [decide(i, by_row.get(i, []), policy, need(i)) for i in row_ids]


def agreement_report(votes: list[Vote], issue_labels: list[str]) -> dict[str, Any]:
    """Agreement per question (decision: nominal; quality: ordinal + interval; issues: nominal, one
    binary unit per record and label) and overall (mean Krippendorff's alpha)."""
    annotators = sorted({v.annotator for v in votes})
    records = sorted({v.record for v in votes})
    at = {(v.annotator, v.record): v for v in votes}

    def matrix(get) -> list[list[Any]]:
        return [[get(at[(a, r)]) if (a, r) in at else None for r in records] for a in annotators]

    issues = [
        [(int(label in at[(a, r)].issues) if (a, r) in at else None) for r in records for label in issue_labels]
        for a in annotators
    ]
    questions = {
        "decision": A.nominal_summary(matrix(lambda v: v.decision)),
        "quality": A.rating_summary(matrix(lambda v: v.quality)),
        "issues": A.nominal_summary(issues),
    }
    counts = Counter(len([v for v in votes if v.record == r]) for r in records)
    return {
        "annotators": annotators,
        "records_with_votes": len(records),
        "records_with_overlap": sum(n for k, n in counts.items() if k >= 2),
        "overall": A.overall(questions),
        "questions": questions,
    }


def disagreements(outcome_list: list[Outcome]) -> list[dict[str, Any]]:
    """Rows whose submitted decisions differ, with who said what and what the policy made of it."""
    out = []
    for o in outcome_list:
        if len({v.decision for v in o.votes}) > 1:
            outcome = "kept" if o.kept else o.reason
            out.append({"id": o.id, "votes": {v.annotator: v.decision for v in o.votes}, "outcome": outcome})
    return out


def snapshot_sha256(votes: list[Vote]) -> str:
    """A hash of every submitted response the pull used, in a canonical order."""
    rows = sorted(
        json.dumps([v.record, v.annotator, v.decision, v.corrected, v.quality, list(v.issues), v.submitted_at], ensure_ascii=False)
        for v in votes
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()
