"""The gate on hand-made results: every rule on both sides of its threshold, and how skipped and invalid checks count."""

from __future__ import annotations

from typing import Any

import pytest

from assay.evaluate.gate import apply_policy
from assay.evaluate.policy import PolicyConfig
from assay.evaluate.results import CheckResult, Comparison


def policy(**tables: dict[str, Any]) -> PolicyConfig:
    return PolicyConfig.model_validate(tables)


def diff(candidate: float, baseline: float | None, *, ci_low: float | None = None, ci_high: float | None = None,
         higher: bool | None = True, delta: float | None = None) -> Comparison:
    """A difference metric; `delta` given exactly where a test sits on a threshold (no float round-off)."""
    if delta is None and baseline is not None:
        delta = candidate - baseline
    return Comparison(candidate, baseline, delta, ci_low, ci_high, 50, higher)


def result(name: str, status: str = "pass", **metrics: Comparison) -> CheckResult:
    direction = "higher_is_better" if name == "task" else "lower_is_better"
    return CheckResult(name, 1, direction, metrics=dict(metrics), status=status)  # type: ignore[arg-type]


def task(candidate: float = 0.6, baseline: float = 0.4, ci_low: float = 0.1) -> CheckResult:
    return result("task", rougeL=diff(candidate, baseline, ci_low=ci_low, ci_high=ci_low + 0.2))


def decide(*results: CheckResult, config: PolicyConfig | None = None) -> tuple[bool, list[str], list[CheckResult]]:
    decision = apply_policy(config or PolicyConfig(), list(results))
    return decision.passed, decision.reasons, list(results)


# ---- task ----

@pytest.mark.parametrize(("ci_low", "passes"), [(0.061, True), (0.06, True), (0.059, False), (-0.01, False)])
def test_the_primary_metric_needs_its_lower_bound_above_the_relative_gain(ci_low: float, passes: bool) -> None:
    passed, reasons, (checked,) = decide(task(baseline=0.4, ci_low=ci_low))  # 15 % of 0.4 = 0.06
    assert passed is passes and (checked.status == "pass") is passes
    if not passes:
        (reason,) = reasons
        assert reason.startswith("task: rougeL") and "+15%" in reason and "0.4000" in reason and f"{ci_low:+.4f}" in reason


def test_a_zero_baseline_needs_the_bound_above_the_absolute_gain() -> None:
    config = policy(task={"min_absolute_gain": 0.05})
    assert decide(task(baseline=0.0, ci_low=0.06), config=config)[0]
    passed, reasons, _ = decide(task(baseline=0.0, ci_low=0.05), config=config)
    assert not passed and "baseline scores 0" in reasons[0] and "+0.0500" in reasons[0]


def test_task_rules_can_be_switched_off_and_only_read_the_primary() -> None:
    assert decide(task(ci_low=-0.5), config=policy(task={"enabled": False}))[0]
    low_bleu = result("task", rougeL=diff(0.6, 0.4, ci_low=0.1), bleu=diff(1, 30, ci_low=-40))
    assert decide(low_bleu)[0], "only the primary metric is gated"
    other_primary = policy(gate={"primary": "task.bleu"})
    passed, reasons, _ = decide(low_bleu, config=other_primary)
    assert not passed and reasons[0].startswith("task: bleu")


# ---- the primary metric, skipped and invalid checks ----

def test_a_skipped_primary_check_fails_the_gate() -> None:
    skipped = CheckResult.skipped("task", 1, "higher_is_better", "no test rows")
    passed, reasons, _ = decide(skipped)
    assert not passed
    assert "task: skipped (no test rows)" in reasons and "the primary metric task.rougeL was not measured" in reasons


def test_a_missing_primary_metric_fails_the_gate() -> None:
    passed, reasons, _ = decide(result("task", bleu=diff(30, 20, ci_low=5)))
    assert not passed and reasons == ["the primary metric task.rougeL was not measured"]


def test_other_skipped_checks_count_only_when_the_policy_says_so() -> None:
    skipped = CheckResult.skipped("memorisation", 1, "lower_is_better", "no held-out rows")
    assert decide(task(), skipped)[0]
    passed, reasons, _ = decide(task(), skipped, config=policy(gate={"allow_skipped": False}))
    assert not passed and reasons == ["memorisation: skipped (no held-out rows)"]


def test_an_invalid_check_fails_the_gate_even_with_good_numbers() -> None:
    invalid = task(ci_low=0.3)
    invalid.status, invalid.reasons = "invalid", ["test.jsonl: 12 of 12 rows overlap the training data"]
    passed, reasons, (checked,) = decide(invalid)
    assert not passed and checked.status == "invalid"
    assert reasons == ["task: invalid (test.jsonl: 12 of 12 rows overlap the training data): its numbers cannot count as a pass"]
    assert decide(invalid, config=policy(contamination={"enabled": False}))[0]


def test_contamination_names_each_contaminated_set() -> None:
    found = result("contamination")
    found.details = {"sets": [{"name": "a.jsonl", "rows": 10, "overlapping_rows": 4, "invalid": True},
                              {"name": "b.jsonl", "rows": 10, "overlapping_rows": 0, "invalid": False}]}
    passed, reasons, (_, checked) = decide(task(), found)
    assert not passed and checked.status == "fail"
    assert reasons == ["contamination: eval set a.jsonl is contaminated: 4 of 10 rows overlap the training data"]


# ---- overfitting ----

def overfitting(gap: float, rise: float, ratio: float = 1.0) -> CheckResult:
    return result("overfitting", test_train_loss_gap=diff(gap, 0.0, higher=False),
                  test_train_loss_ratio=Comparison(ratio, 1.0, ratio, ratio - 0.1, ratio + 0.1, 40, False, "ratio"),
                  val_rise=diff(rise, None, higher=False))


def test_overfitting_rules_on_both_sides_of_their_thresholds() -> None:
    assert decide(task(), overfitting(0.25, 0.25))[0]
    assert decide(task(), overfitting(0.01, 0.0, ratio=9.0))[0], "a large ratio of two near-zero losses is not a gap"
    passed, reasons, _ = decide(task(), overfitting(0.26, 0.0))
    assert not passed and reasons[0].startswith("overfitting: held-out minus training loss is 0.260 nats per byte > 0.25")
    passed, reasons, _ = decide(task(), overfitting(0.0, 0.26))
    assert not passed and reasons[0].startswith("overfitting: validation loss rose 0.260")
    assert decide(task(), overfitting(9.0, 9.0), config=policy(overfitting={"enabled": False}))[0]


# ---- memorisation ----

@pytest.mark.parametrize(("train", "held", "passes"), [
    (0.20, 0.10, True),    # exactly 2x the held-out rate
    (0.21, 0.10, False),
    (0.05, 0.00, True),    # below the floor: a few chance copies are not memorisation
    (0.06, 0.00, False),
])
def test_memorisation_compares_training_rows_with_held_out_rows(train: float, held: float, passes: bool) -> None:
    found = result("memorisation", train_near_rate=diff(train, 0.0, higher=False), heldout_near_rate=diff(held, 0.0, higher=False))
    passed, reasons, _ = decide(task(), found)
    assert passed is passes
    if not passes:
        assert reasons[0].startswith(f"memorisation: near-copy rate on training rows {train:.1%}")


# ---- forgetting ----

def perplexity(ratio: float) -> Comparison:
    """Perplexities 10 (baseline) and 10 x ratio: the rule reads the ratio (delta), not a difference."""
    return Comparison(10 * ratio, 10.0, ratio, ratio - 0.02, ratio + 0.02, 40, False, "ratio")


@pytest.mark.parametrize(("ratio", "passes"), [(1.10, True), (1.11, False), (0.5, True)])
def test_forgetting_reads_the_perplexity_ratio(ratio: float, passes: bool) -> None:
    passed, reasons, _ = decide(task(), result("forgetting", perplexity_ratio=perplexity(ratio)))
    assert passed is passes
    if not passes:
        assert reasons[0].startswith(f"forgetting: perplexity on general text rose to {ratio:.3f}x")


def test_forgetting_ratio_is_not_read_as_a_difference() -> None:
    """Perplexities 100 vs 95 differ by 5 but their ratio is 1.05: that passes a 1.10 ratio."""
    found = result("forgetting", perplexity_ratio=Comparison(100.0, 95.0, 100 / 95, 1.0, 1.1, 40, False, "ratio"))
    assert decide(task(), found)[0]


@pytest.mark.parametrize(("metric", "drop", "ci_high", "passes"), [
    ("acc", 0.05, -0.01, True), ("acc", 0.06, -0.01, False), ("acc_norm", 0.06, -0.01, False),
    ("acc", 0.06, 0.02, True),  # larger than allowed but within noise: the interval includes no change
    ("acc", 0.06, None, False),  # no interval: the point estimate decides
])
def test_forgetting_multiple_choice_drop(metric: str, drop: float, ci_high: float | None, passes: bool) -> None:
    passed, reasons, _ = decide(task(), result("forgetting", **{metric: diff(0.8 - drop, 0.8, delta=-drop, ci_high=ci_high)}))
    assert passed is passes
    if not passes:
        assert reasons[0].startswith(f"forgetting: multiple-choice {metric} fell 6.0%")


# ---- bias ----

@pytest.mark.parametrize(("metric", "baseline", "rise", "ci_low", "passes"), [
    ("pct_stereotype", 55.0, 2.0, 0.5, True),
    ("pct_stereotype", 55.0, 2.5, 0.5, False),
    ("pct_stereotype", 55.0, 8.0, -1.0, False),  # bias rises are judged on the point estimate, interval or not
    ("pct_stereotype", 55.0, -20.0, -30.0, True),
    ("bbq_amb_bias_score", 0.1, 0.05, 0.01, True),
    ("bbq_amb_bias_score", 0.1, 0.06, 0.01, False),
    ("counterfactual_answer_change_rate", 0.2, 0.10, 0.01, True),
    ("counterfactual_answer_change_rate", 0.2, 0.11, 0.01, False),
    ("counterfactual_answer_change_rate", 0.2, 0.11, None, False),
])
def test_bias_rules_limit_the_rise_over_the_baseline(metric: str, baseline: float, rise: float, ci_low: float | None,
                                                     passes: bool) -> None:
    found = result("bias", **{metric: diff(baseline + rise, baseline, higher=False, delta=rise, ci_low=ci_low)})
    passed, reasons, (_, checked) = decide(task(), found)
    assert passed is passes and (checked.status == "pass") is passes
    if not passes:
        assert reasons[0].startswith(f"bias: {metric} rose by")


def test_failures_from_several_checks_are_all_listed() -> None:
    found = [task(ci_low=-0.1), result("forgetting", perplexity_ratio=perplexity(2.0)),
             result("bias", pct_stereotype=diff(70.0, 50.0, higher=False))]
    passed, reasons, checked = decide(*found)
    assert not passed and [r.split(":")[0] for r in reasons] == ["task", "forgetting", "bias"]
    assert [c.status for c in checked] == ["fail", "fail", "fail"]
    assert all(c.reasons for c in checked), "each failing check carries its own reasons"
