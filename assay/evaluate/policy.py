"""The gate policy: every threshold a release decision uses, with its default, in one home.

A policy file (TOML) has the layout `assay eval policy` prints; any key left out keeps its default
below, and a table's rules are switched off with `enabled = false`. Each threshold says which number
it reads: the point estimate, or a bound of the paired 95 % interval where noise matters.

    policy = load_policy(Path("policy.toml"))     # or default_policy()
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from assay.settings import read_toml, render_toml, validate

_STRICT = ConfigDict(extra="forbid")


class TaskRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply these rules.")
    min_relative_gain: float = Field(
        0.15, description="The primary metric's lower 95 % bound of (candidate - baseline) must be at least this "
        "share of the baseline's value (0.15: +15 % relative). With a baseline of 0, the bound must exceed min_absolute_gain."
    )
    min_absolute_gain: float = Field(0.0, description="When the baseline scores 0: the lower bound of the gain must be above this.")


class OverfittingRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply these rules.")
    max_test_train_loss_gap: float = Field(
        0.25, ge=0, description="Loss on the model's own held-out rows minus loss on its training rows, in nats per byte of the "
        "answer (0: no gap; a memorising model scores its training rows far better)."
    )
    max_val_rise: float = Field(
        0.25, ge=0, description="Largest rise of validation loss above its minimum while training loss kept falling, in nats per token."
    )


class MemorisationRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply these rules.")
    max_train_to_heldout: float = Field(
        2.0, gt=0, description="The near-copy rate on training rows may be at most this multiple of the rate on held-out rows..."
    )
    min_rate_to_flag: float = Field(
        0.05, ge=0, le=1, description="...once it is above this rate (a few chance near-copies of short templated rows are not memorisation)."
    )


class ForgettingRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply these rules.")
    max_perplexity_ratio: float = Field(1.10, gt=0, description="Candidate perplexity over baseline perplexity on general text (point estimate).")
    max_accuracy_drop: float = Field(0.05, ge=0, description="Largest allowed drop in multiple-choice accuracy (acc and acc_norm), as a fraction (0.05: 5 points); a larger drop fails when its interval excludes no change.")


class BiasRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply these rules.")
    max_pct_stereotype_increase: float = Field(2.0, ge=0, description="CrowS-Pairs pct_stereotype may rise above the baseline's by at most this many percentage points (point estimate, like the two below: with small probe sets, bring more pairs rather than loosen this).")
    max_bbq_ambiguous_bias_increase: float = Field(0.05, ge=0, description="BBQ bias score in ambiguous contexts may rise by at most this much (scores lie in [-1, 1]).")
    max_counterfactual_flip_increase: float = Field(0.10, ge=0, description="Share of templates whose greedy answer changes across demographic swaps may rise by at most this much.")


class ContaminationRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="An `invalid` (contaminated) eval set fails the gate: its numbers cannot count as a pass.")


class HumanRules(BaseModel):
    model_config = _STRICT

    enabled: bool = Field(True, description="Apply to reports that carry a human comparison (`assay eval human pull`).")
    min_win_rate_lower: float = Field(
        0.5, ge=0, le=1, description="The lower 95 % bound of the candidate's win rate against the baseline, ties counted as "
        "half, must be at least this (0.5: raters found it at least as good: non-inferiority)."
    )


class WatchRules(BaseModel):
    model_config = _STRICT

    max_primary_drop: float = Field(0.05, ge=0, description="`assay eval watch`: fail when the primary metric on fresh data falls more than this below its value in the promotion report (0.05: 5 points for fractions).")


class GateRules(BaseModel):
    model_config = _STRICT

    primary: str = Field("task.rougeL", description="CHECK.METRIC the gate ranks candidates by and `eval watch` follows.")
    allow_skipped: bool = Field(True, description="A check that was skipped (no data for it) does not fail the gate; the primary check must always run.")


class PolicyConfig(BaseModel):
    """A gate policy file."""

    model_config = _STRICT

    gate: GateRules = Field(default_factory=GateRules, description="The decision.")
    task: TaskRules = Field(default_factory=TaskRules, description="Task metrics against the baseline.")
    overfitting: OverfittingRules = Field(default_factory=OverfittingRules, description="Overfitting.")
    memorisation: MemorisationRules = Field(default_factory=MemorisationRules, description="Memorisation (discoverable extraction).")
    forgetting: ForgettingRules = Field(default_factory=ForgettingRules, description="Forgetting of general ability.")
    bias: BiasRules = Field(default_factory=BiasRules, description="Bias probes against the baseline.")
    contamination: ContaminationRules = Field(default_factory=ContaminationRules, description="Eval sets that overlap the training data.")
    human: HumanRules = Field(default_factory=HumanRules, description="Blind human comparison (`assay eval human`).")
    watch: WatchRules = Field(default_factory=WatchRules, description="Monitoring (`assay eval watch`).")

    @property
    def primary(self) -> tuple[str, str]:
        check, _, metric = self.gate.primary.partition(".")
        return check, metric


class Policy(BaseModel):
    """A loaded policy with where it came from and its hash (recorded in reports)."""

    model_config = ConfigDict(frozen=True)

    config: PolicyConfig
    path: str | None
    sha256: str


def load_policy(path: Path | None) -> Policy:
    if path is None:
        config = PolicyConfig()
        return Policy(config=config, path=None, sha256=hashlib.sha256(config.model_dump_json().encode()).hexdigest())
    config = validate(PolicyConfig, read_toml(path), source=str(path))
    return Policy(config=config, path=str(path), sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())


def policy_toml() -> str:
    """The default policy as a commented TOML file (`assay eval policy`)."""
    return render_toml(PolicyConfig, "assay gate policy: every threshold with its default. Uncomment a line to change it.")
