"""The checks, registered by name on import (see `base.check`)."""

from assay.evaluate.checks import bias, contamination, forgetting, memorisation, overfitting, task  # noqa: F401  (registration)
from assay.evaluate.checks.base import REGISTRY, CheckSpec, EvalContext, check

__all__ = ["REGISTRY", "CheckSpec", "EvalContext", "check"]
