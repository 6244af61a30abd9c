"""Curation steps, registered by name. Importing this package registers all of them."""

from assay.curate.steps import exact_dedup, normalize  # noqa: F401  (registration side effect)
from assay.curate.steps.base import REGISTRY, Step, StepContext

__all__ = ["REGISTRY", "Step", "StepContext"]
