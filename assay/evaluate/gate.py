"""The gate: the policy's thresholds applied to the checks' results, every failure with its reason.

    decision = apply_policy(policy_config, results)
    decision.passed, decision.reasons

Each rule reads one number of one check (point estimate or interval bound, as the policy says; a
drop in multiple-choice accuracy also needs its interval to exclude no change) and,
when it fails, sets the check's status to `fail` and adds a reason that names the metric, the
value, the threshold and the baseline. A check whose eval data is contaminated is `invalid` and
fails the gate; a skipped check fails it only when it holds the primary metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.evaluate.policy import PolicyConfig
from assay.evaluate.results import CheckResult, Comparison

Rule = Callable[[CheckResult, PolicyConfig], list[str]]


@dataclass
class Decision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    primary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "primary": self.primary}


def apply_policy(policy: PolicyConfig, results: list[CheckResult]) -> Decision:
    """Set each check's status and reasons from the policy; the gate passes when nothing failed."""
    reasons: list[str] = []
    for result in results:
        if result.status in ("skipped", "invalid"):
            continue
        failures = RULES.get(result.name, _no_rules)(result, policy)
        if failures:
            result.status, result.reasons = "fail", [*result.reasons, *failures]
        reasons += [f"{result.name}: {r}" for r in failures]
    reasons += _invalid_and_skipped(policy, results)
    primary = _primary(policy, results)
    if primary is None:
        reasons.append(f"the primary metric {policy.gate.primary} was not measured")
    return Decision(not reasons, reasons, primary)


def _invalid_and_skipped(policy: PolicyConfig, results: list[CheckResult]) -> list[str]:
    out = []
    check, _ = policy.primary
    for r in results:
        if r.status == "invalid" and policy.contamination.enabled:
            out.append(f"{r.name}: invalid ({'; '.join(r.reasons)}): its numbers cannot count as a pass")
        elif r.status == "skipped" and (r.name == check or not policy.gate.allow_skipped):
            out.append(f"{r.name}: skipped ({'; '.join(r.reasons)})")
    return out


def _primary(policy: PolicyConfig, results: list[CheckResult]) -> dict[str, Any] | None:
    check, metric = policy.primary
    found = next((r for r in results if r.name == check and r.status != "skipped"), None)
    if found is None or metric not in found.metrics or found.metrics[metric].candidate is None:
        return None
    return {"check": check, "metric": metric, **found.metrics[metric].to_dict()}


def _no_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    return []


def _get(result: CheckResult, name: str) -> Comparison | None:
    m = result.metrics.get(name)
    return m if m is not None and m.candidate is not None else None


def task_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    check, metric = policy.primary
    rules = policy.task
    m = _get(result, metric)
    if not rules.enabled or check != "task" or m is None or m.ci_low is None:
        return []
    if m.baseline:
        needed = rules.min_relative_gain * abs(m.baseline)
        if m.ci_low < needed:
            return [f"{metric}: the lower 95 % bound of the gain is {m.ci_low:+.4f}, below the required "
                    f"{rules.min_relative_gain:+.0%} of the baseline's {m.baseline:.4f} ({needed:+.4f}); "
                    f"candidate {m.candidate:.4f}"]
        return []
    if m.ci_low <= rules.min_absolute_gain:
        return [f"{metric}: the baseline scores 0 and the lower 95 % bound of the gain is {m.ci_low:+.4f}, "
                f"not above {rules.min_absolute_gain:+.4f}"]
    return []


def overfitting_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    rules, out = policy.overfitting, []
    if not rules.enabled:
        return out
    gap = _get(result, "test_train_loss_gap")
    if gap is not None and gap.candidate > rules.max_test_train_loss_gap:
        out.append(f"held-out minus training loss is {gap.candidate:.3f} nats per byte > {rules.max_test_train_loss_gap} "
                   f"(the baseline's is {gap.baseline:.3f}): the model scores its training rows far better than held-out rows")
    rise = _get(result, "val_rise")
    if rise is not None and rise.candidate > rules.max_val_rise:
        out.append(f"validation loss rose {rise.candidate:.3f} above its minimum while training loss fell (> {rules.max_val_rise})")
    return out


def memorisation_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    rules = policy.memorisation
    train, held = _get(result, "train_near_rate"), _get(result, "heldout_near_rate")
    if not rules.enabled or train is None or held is None:
        return []
    limit = max(rules.max_train_to_heldout * held.candidate, rules.min_rate_to_flag)
    if train.candidate > limit:
        return [f"near-copy rate on training rows {train.candidate:.1%} > {limit:.1%} "
                f"({rules.max_train_to_heldout}x the held-out rate {held.candidate:.1%}, at least {rules.min_rate_to_flag:.0%}); "
                f"the baseline's is {train.baseline:.1%}"]
    return []


def forgetting_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    rules, out = policy.forgetting, []
    if not rules.enabled:
        return out
    ppl = _get(result, "perplexity_ratio")  # candidate/baseline: the perplexities; delta: their ratio
    if ppl is not None and ppl.delta is not None and ppl.delta > rules.max_perplexity_ratio:
        out.append(f"perplexity on general text rose to {ppl.delta:.3f}x the baseline's ({ppl.candidate:.2f} vs "
                   f"{ppl.baseline:.2f}; at most {rules.max_perplexity_ratio}x allowed)")
    for name in ("acc", "acc_norm"):
        m = _get(result, name)
        if m is not None and m.delta is not None and m.delta < -rules.max_accuracy_drop and _beyond_noise(m, drop=True):
            out.append(f"multiple-choice {name} fell {-m.delta:.1%} to {m.candidate:.1%} (baseline {m.baseline:.1%}; "
                       f"at most {rules.max_accuracy_drop:.0%} allowed, and the interval excludes no change)")
    return out


def _beyond_noise(m: Comparison, *, drop: bool) -> bool:
    """The paired interval excludes "no change" in the bad direction (when there is an interval).

    Multiple-choice probes are small (one item of 24 moves accuracy by 4 points), and the perplexity
    ratio already judges general ability, so an accuracy drop counts when it is larger than allowed and
    not noise. Bias rises are judged on the point estimate: there, missing a real rise costs more.
    """
    if drop:
        return m.ci_high is None or m.ci_high < 0
    return m.ci_low is None or m.ci_low > 0


def bias_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    rules, out = policy.bias, []
    if not rules.enabled:
        return out
    limits = (("pct_stereotype", rules.max_pct_stereotype_increase, "{:.2f} points"),
              ("bbq_amb_bias_score", rules.max_bbq_ambiguous_bias_increase, "{:+.3f}"),
              ("counterfactual_answer_change_rate", rules.max_counterfactual_flip_increase, "{:+.3f}"))
    for name, limit, fmt in limits:
        m = _get(result, name)
        if m is not None and m.delta is not None and m.delta > limit:  # the point estimate: sensitivity first for bias
            out.append(f"{name} rose by {fmt.format(m.delta)} to {m.candidate:.3f} (baseline {m.baseline:.3f}; at most {limit} allowed)")
    return out


def contamination_rules(result: CheckResult, policy: PolicyConfig) -> list[str]:
    if not policy.contamination.enabled:
        return []
    return [f"eval set {s['name']} is contaminated: {s['overlapping_rows']} of {s['rows']} rows overlap the training data"
            for s in result.details.get("sets", []) if s.get("invalid")]


def human_rules(policy: PolicyConfig, human: dict[str, Any]) -> list[str]:
    """The human comparison's rule: the lower bound of the candidate's win rate (ties split)."""
    rules, win = policy.human, human.get("win_rate") or {}
    if not rules.enabled or win.get("low") is None:
        return [] if not rules.enabled else ["human: no submitted comparison to judge"]
    if win["low"] < rules.min_win_rate_lower:
        return [f"human: the candidate's win rate (ties as half) is {win['estimate']:.1%}, its lower 95 % bound "
                f"{win['low']:.1%} is below {rules.min_win_rate_lower:.0%} ({win['n']} votes on {win.get('records', '?')} records)"]
    return []


RULES: dict[str, Rule] = {
    "contamination": contamination_rules,
    "task": task_rules,
    "overfitting": overfitting_rules,
    "memorisation": memorisation_rules,
    "forgetting": forgetting_rules,
    "bias": bias_rules,
}
