"""`[eval]` in assay.toml: where the suite and policy come from and how models are scored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HumanSettings(BaseModel):
    """`[eval.human]`: blind side-by-side comparisons in Argilla (`assay eval human push`)."""

    model_config = ConfigDict(extra="forbid")

    sample: int = Field(50, ge=1, description="Prompts compared (a seeded sample, stratified by category when there is one).")
    min_submitted: int = Field(2, ge=1, description="Raters per record (two or more, so agreement can be measured).")
    max_new_tokens: int = Field(128, ge=1, description="Longest answer generated per side, in tokens.")
    category_column: str = Field("category", description="Column whose values get their own win rate (when the prompts have it).")


class EvalConfig(BaseModel):
    """`[eval]`: `assay eval run` settings (the checks themselves live in the suite file)."""

    model_config = ConfigDict(extra="forbid")

    suite: str | None = Field(None, examples=["eval/suite.toml"], description="Suite file (which checks, on which data); unset: every check on assay's own probe sets and the model's test split.")
    policy: str | None = Field(None, examples=["eval/policy.toml"], description="Gate policy file (thresholds); unset: the documented defaults (`assay eval policy` prints them).")
    baseline: str = Field("auto", description="What the candidate is compared with: auto (the promoted model if there is one, else the base), base, promoted, or a model version id.")
    batch_size: int = Field(16, ge=1, description="Sequences per forward pass when scoring.")
    device: str | None = Field(None, examples=["cuda"], description="Where to score (cpu, cuda, cuda:1); unset: a CUDA device when one is available, else the CPU.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="auto: bfloat16 on a GPU that supports it, float32 on the CPU.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of every interval in the report.")
    resamples: int = Field(1000, ge=100, description="Bootstrap resamples per interval.")
    seed: int = Field(0, ge=0, description="Seed of sampling and bootstrap (default: the workspace seed).")
    human: HumanSettings = Field(default_factory=HumanSettings, description="Blind human comparisons.")
    cache_baseline: bool = Field(True, description="Remember the baseline's scores in the workspace cache (keyed by its weights' hash and the scoring settings), so the next candidate compared with it does not score it again.")
