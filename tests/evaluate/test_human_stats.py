"""The numbers of a blind comparison against values worked out by hand."""

from __future__ import annotations

import pytest

from assay.evaluate.human.stats import (
    Vote,
    disputed,
    per_category,
    position_bias,
    ratings,
    summarise,
    win_rate,
)


def votes(*outcomes: tuple[str, str, str, str]) -> list[Vote]:
    return [Vote(record, rater, outcome, chose) for record, rater, outcome, chose in outcomes]


def test_rates_and_the_win_rate_with_ties_as_half():
    found = votes(("r1", "x", "win", "A"), ("r1", "y", "win", "A"), ("r2", "x", "tie", "tie"), ("r2", "y", "loss", "B"),
                  ("r3", "x", "win", "B"), ("r3", "y", "win", "B"), ("r4", "x", "loss", "A"), ("r4", "y", "tie", "tie"))
    s = summarise(found, resamples=500)
    assert s["rates"]["win"]["estimate"] == 4 / 8 and s["rates"]["tie"]["estimate"] == 2 / 8 and s["rates"]["loss"]["estimate"] == 2 / 8
    assert s["rates"]["win"]["low"] == pytest.approx(0.2152, abs=1e-3) and s["rates"]["win"]["high"] == pytest.approx(0.7848, abs=1e-3)
    assert s["win_rate"]["estimate"] == pytest.approx((4 + 0.5 * 2) / 8) and s["win_rate"]["records"] == 4
    assert 0 <= s["win_rate"]["low"] <= 0.625 <= s["win_rate"]["high"] <= 1
    assert s["records"] == 4 and s["raters"] == ["x", "y"]


def test_the_interval_resamples_records_not_votes():
    """Ten raters agreeing on one record are one piece of evidence: the interval stays wide."""
    one_record = [Vote("r1", f"rater{i}", "win", "A") for i in range(10)] + [Vote("r2", f"rater{i}", "loss", "B") for i in range(10)]
    w = win_rate(one_record, resamples=2000)
    assert w["estimate"] == 0.5 and w["low"] == 0.0 and w["high"] == 1.0


def test_a_rater_who_always_picks_a_shows_as_position_bias():
    fair = [Vote(f"r{i}", "fair", "win" if i % 2 else "loss", "A" if i % 2 else "B") for i in range(20)]
    always_a = [Vote(f"r{i}", "lazy", "win" if i % 2 else "loss", "A") for i in range(20)]
    bias = position_bias(fair + always_a)
    assert bias["per_rater"]["lazy"]["estimate"] == 1.0 and bias["per_rater"]["lazy"]["low"] > 0.8
    assert bias["per_rater"]["fair"]["estimate"] == 0.5
    assert bias["chose_a"]["estimate"] == 0.75 and bias["chose_a"]["low"] > 0.5, "measurable overall"


def test_ratings_categories_and_disputes():
    found = [Vote("r1", "x", "win", "A", "math", 5, 3, "clearer"), Vote("r1", "y", "loss", "B", "math", 2, 4, "wrong unit"),
             Vote("r2", "x", "win", "A", "geo", 4, 2), Vote("r2", "y", "win", "B", "geo", 5, 1)]
    assert ratings(found) == {"candidate": 4.0, "baseline": 2.5, "delta": 1.5, "n": 4}
    cats = per_category(found, resamples=200)
    assert cats["math"]["win_rate"]["estimate"] == 0.5 and cats["geo"]["win_rate"]["estimate"] == 1.0
    [d] = disputed(found)
    assert d["record"] == "r1" and d["votes"] == {"x": "win", "y": "loss"} and d["comments"] == {"x": "clearer", "y": "wrong unit"}


def test_the_human_section_escapes_every_string():
    from assay.evaluate.report_html import render_html

    bad = "<script>alert(1)</script>"
    found = [Vote("r1", bad, "win", "A", bad, 5, 3, bad), Vote("r1", "y", "loss", "B", bad, 2, 4, bad)]
    human = summarise(found, resamples=100) | {"dataset": bad, "per_category": per_category(found, resamples=100),
                                              "disputed": [d | {"prompt": bad, "candidate": bad, "baseline": bad, "shown_as_a": "candidate"}
                                                           for d in disputed(found)], "agreement": {}, "automatic_report": bad}
    html = render_html({"model": {"id": "mv-x"}, "gate": {"passed": True, "reasons": []}, "checks": [], "human": human})
    assert "<script" not in html and "&lt;script&gt;" in html and "Human evaluation" in html
