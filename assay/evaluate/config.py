"""`[eval]` in assay.toml: where the suite and policy come from and how models are scored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    cache_baseline: bool = Field(True, description="Remember the baseline's scores in the workspace cache (keyed by its weights' hash and the scoring settings), so the next candidate compared with it does not score it again.")
