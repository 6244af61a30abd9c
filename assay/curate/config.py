"""The curation pipeline's configuration: which steps run, and each step's options."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.curate.readers import ReadConfig
from assay.curate.steps import REGISTRY
from assay.curate.steps.decontaminate import DecontaminateConfig
from assay.curate.steps.exact_dedup import ExactDedupConfig
from assay.curate.steps.near_dedup import NearDedupConfig
from assay.curate.steps.normalize import NormalizeConfig
from assay.curate.steps.pii import PiiConfig
from assay.curate.steps.quality import QualityConfig
from assay.curate.steps.split import SplitConfig

DEFAULT_STEPS = ["normalize", "quality", "pii", "exact_dedup", "near_dedup", "decontaminate", "split"]


class RayConfig(BaseModel):
    """`[curate.ray]`: where the Ray engine runs (none of it changes a result)."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        examples=["head-node:6379", "auto"],
        description="Ray cluster to join; unset: RAY_ADDRESS, else a local cluster is started for the run.",
    )
    num_cpus: int | None = Field(None, ge=1, examples=[8], description="CPUs of a local cluster (unset: every core).")
    object_store_mb: int | None = Field(
        None, ge=64, examples=[4096], description="Object store of a local cluster (MiB; unset: Ray's default, 30 % of memory). "
        "Blocks beyond it spill to disk.",
    )
    retries: int = Field(3, ge=0, description="Times a task is retried when its worker dies before the run fails.")


class CurateConfig(BaseModel):
    """`[curate]` in assay.toml."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STEPS),
        description=f"Steps to run, in order. Known steps: {', '.join(sorted(REGISTRY))}.",
    )
    seed: int = Field(
        0, description="Seed for every random choice in the pipeline (recorded in the manifest)."
    )
    strict: bool = Field(False, description="Fail (exit 2) instead of quarantining malformed input rows.")
    # Excluded from dumps: how rows are held changes no result, so it must not change version ids.
    memory_mb: int = Field(
        512,
        ge=0,
        exclude=True,
        description="Rows held in memory between passes before the run spills them to disk (MiB); with "
        "read.chunk_rows it bounds the run's memory. Results do not depend on it.",
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        exclude=True,
        description="`local`: this process, memory bounded by memory_mb; `ray`: each block's work as a Ray task "
        "on a local or remote cluster (pip install 'assay[ray]'). Both write the same version.",
    )
    ray: RayConfig = Field(default_factory=RayConfig, exclude=True, description="The Ray engine's cluster.")
    read: ReadConfig = Field(default_factory=ReadConfig, description="How input files are read and mapped.")
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig, description="The `normalize` step.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="The `quality` step.")
    pii: PiiConfig = Field(default_factory=PiiConfig, description="The `pii` step.")
    exact_dedup: ExactDedupConfig = Field(
        default_factory=ExactDedupConfig, description="The `exact_dedup` step."
    )
    near_dedup: NearDedupConfig = Field(default_factory=NearDedupConfig, description="The `near_dedup` step (MinHash LSH).")
    decontaminate: DecontaminateConfig = Field(
        default_factory=DecontaminateConfig, description="The `decontaminate` step."
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="The `split` step.")

    @field_validator("steps")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        unknown = [s for s in steps if s not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown step(s) {unknown}; known: {sorted(REGISTRY)}")
        if len(set(steps)) != len(steps):
            raise ValueError("a step is listed twice")
        return steps

    def step_config(self, name: str) -> BaseModel:
        return getattr(self, name)
