"""Curation steps, registered by name. Importing this package registers all of them."""

from assay.curate.steps import decontaminate, exact_dedup, near_dedup, normalize, pii, quality, split  # noqa: F401  (registration)
from assay.curate.steps.base import REGISTRY, Step, StepContext

__all__ = ["REGISTRY", "Step", "StepContext"]
