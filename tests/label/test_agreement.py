"""Agreement statistics against published textbook values, and the review policies on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from assay.config import AssayConfig
from assay.errors import ConfigError
from assay.label import agreement as A
from assay.label import review as R
from assay.label.config import Policy, parse_policy
from assay.label.pull import approved_frames

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 coders x 12 units.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
# Wikipedia's "Krippendorff's alpha" example: 3 coders x 15 units.
WIKIPEDIA = [
    [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
    [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
    [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
]


@pytest.mark.parametrize(
    ("level", "expected"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_published_example(level, expected):
    assert A.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_wikipedia_example():
    assert A.krippendorff_alpha(WIKIPEDIA, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert A.krippendorff_alpha(WIKIPEDIA, "interval") == pytest.approx(0.811, abs=5e-4)


def test_krippendorff_edge_cases():
    assert A.krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == 1.0
    assert math.isnan(A.krippendorff_alpha([[1, None], [None, 2]]))  # no unit coded twice
    assert math.isnan(A.krippendorff_alpha([[1, 1], [1, 1]]))  # no variation: undefined
    assert A.krippendorff_alpha(A.encode([["a", "b"], ["a", "b"]])) == 1.0


def test_cohen_kappa_wikipedia_example():
    # 50 proposals: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5, kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert A.cohen_kappa(a, b) == pytest.approx(0.4)
    assert A.cohen_kappa(["x", None], [None, "x"]) != A.cohen_kappa(["x", None], [None, "x"])  # NaN: no overlap


def test_fleiss_kappa_wikipedia_example():
    # Fleiss (1971) layout as on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    assert A.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert A.fleiss_kappa(np.array([[2, 0], [0, 2]])) == 1.0


def test_two_raters_agree_across_statistics():
    """The summary of two raters, checked against values computed by hand."""
    a = ["approve", "approve", "reject", "edit", "approve"]
    b = ["approve", "reject", "reject", "approve", "approve"]
    s = A.nominal_summary([a, b])
    assert s["cohen_kappa"] == pytest.approx(0.2857, abs=1e-4)  # po 0.6, pe 11/25
    assert s["krippendorff_alpha"] == pytest.approx(1 / 3, abs=1e-4)  # 1 - 9 * 4 / 54, by hand
    assert s["percent_agreement"] == 0.6 and s["units"] == 5


# -- policies ---------------------------------------------------------------------------------------------


def vote(record: str, who: str, decision: str, corrected: str | None = None, at: str = "2026-01-01T00:00:00") -> R.Vote:
    return R.Vote(record, who, decision, corrected, submitted_at=at)


def test_parse_policy():
    assert parse_policy("majority") == Policy("majority")
    assert parse_policy("min-votes:3") == Policy("min-votes", 3)
    assert str(parse_policy("min-votes:2")) == "min-votes:2"
    for bad in ("most", "min-votes:0", "min-votes:x"):
        with pytest.raises(ConfigError, match="min-votes:N"):
            parse_policy(bad)
    with pytest.raises(ConfigError, match="policy"):
        AssayConfig().with_overrides({"label.policy": "sometimes"})


@pytest.mark.parametrize(
    ("decisions", "policy", "required", "kept", "reason"),
    [
        (["approve", "approve"], "unanimous", 1, True, None),
        (["approve", "reject"], "unanimous", 1, False, R.NO_CONSENSUS),
        (["approve", "approve", "reject"], "unanimous", 1, False, R.NO_CONSENSUS),
        (["approve", "approve", "reject"], "majority", 1, True, None),
        (["approve", "reject"], "majority", 1, False, R.NO_CONSENSUS),
        (["reject", "reject", "edit"], "majority", 1, False, R.REJECTED),
        (["approve"], "min-votes:2", 2, False, R.NO_CONSENSUS),
        (["approve", "edit"], "min-votes:2", 2, True, None),
        ([], "majority", 1, False, R.NOT_REVIEWED),
    ],
)
def test_policies(decisions, policy, required, kept, reason):
    votes = [vote("r", f"u{i}", d) for i, d in enumerate(decisions)]
    outcome = R.decide("r", votes, parse_policy(policy), required)
    assert (outcome.kept, outcome.reason) == (kept, reason)


def test_correction_needs_half_of_the_keep_votes():
    one_of_three = [vote("r", "a", "approve"), vote("r", "b", "approve"), vote("r", "c", "edit", "fixed")]
    assert R.decide("r", one_of_three, Policy("majority"), 1).corrected is None
    tie = [vote("r", "a", "edit", "first", "2026-01-01T00:00:01"), vote("r", "b", "edit", "second", "2026-01-01T00:00:02")]
    outcome = R.decide("r", tie, Policy("majority"), 1)
    assert (outcome.decision, outcome.corrected) == ("edit", "second")  # latest wins a tie
    blank = R.vote_from_response("r", "a", {"values": {"decision": {"value": "edit"}, "corrected_response": {"value": "  "}}})
    assert R.decide("r", [blank], Policy("majority"), 1).decision == "approve"  # edit without a text: nothing to apply


def test_corrections_replace_response_last_assistant_turn_and_text():
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "old"}, {"role": "user", "content": "more?"}]
    data = pl.DataFrame({"id": ["p", "c", "t"], "prompt": ["q", None, None], "response": ["old", None, None],
                         "messages": [None, chat, None], "text": [None, None, "old"], "split": ["train", "val", "train"]})
    outs = [R.Outcome(i, True, "edit", corrected=f"new {i}", votes=[vote(i, "a", "edit", f"new {i}")]) for i in ("p", "c", "t")]
    kept, rejects = approved_frames(data, outs)
    rows = {r["id"]: r for r in kept.to_dicts()}
    assert rows["p"]["response"] == "new p" and rows["t"]["text"] == "new t"
    assert [m["content"] for m in rows["c"]["messages"]] == ["hi", "new c", "more?"]
    assert {r["review_original"] for r in rows.values()} == {"old"} and all(r["review_corrected"] for r in rows.values())
    assert kept.get_column("split").to_list() == ["train", "val", "train"] and rejects.height == 0


def test_agreement_report_and_disagreements():
    votes = [
        vote("r1", "ann", "approve"), vote("r1", "bob", "approve"),
        vote("r2", "ann", "approve"), vote("r2", "bob", "reject"),
        R.Vote("r3", "ann", "reject", quality=2, issues=("pii",)), R.Vote("r3", "bob", "reject", quality=2, issues=("pii",)),
        vote("r4", "ann", "approve"),
    ]
    report = R.agreement_report(votes, ["pii", "unsafe"])
    assert report["annotators"] == ["ann", "bob"] and report["records_with_overlap"] == 3
    assert report["questions"]["decision"]["percent_agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["questions"]["quality"]["units"] == 1
    outs = R.outcomes(["r1", "r2", "r3", "r4"], votes, Policy("majority"), 1)
    assert R.disagreements(outs) == [{"id": "r2", "votes": {"ann": "approve", "bob": "reject"}, "outcome": R.NO_CONSENSUS}]
    assert len(R.snapshot_sha256(votes)) == 64 and R.snapshot_sha256(votes) == R.snapshot_sha256(votes[::-1])
