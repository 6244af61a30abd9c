"""assay: curate, review, train and gate fine-tuning data and models.

The CLI is a thin layer over this API; a notebook runs the same loop:

>>> import assay                                                          # doctest: +SKIP
>>> ws, _ = assay.Workspace.init("./.assay")                              # doctest: +SKIP
>>> curated = assay.curate_data(ws, ["data/train.jsonl"], name="train-v1") # doctest: +SKIP
>>> review = assay.push_for_review(ws, "train-v1", sample=200)            # doctest: +SKIP
>>> approved = assay.pull_reviews(ws, review.dataset, name="train-approved")  # doctest: +SKIP
>>> model_id = assay.train_model(ws, "train-approved", base="model.gguf")  # doctest: +SKIP

The stage functions have verb names because `assay.curate`, `assay.label`, `assay.train` and
`assay.evaluate` are the packages that hold them. Everything is imported on first use, so
`import assay` stays cheap (no polars, no torch).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Workspace": ("assay.workspace", "Workspace"),
    "doctor": ("assay.workspace", "doctor"),
    "AssayConfig": ("assay.config", "AssayConfig"),
    "load_config": ("assay.config", "load_config"),
    "curate_data": ("assay.curate.pipeline", "curate"),
    "push_for_review": ("assay.label.push", "push"),
    "review_progress": ("assay.label.pull", "progress"),
    "pull_reviews": ("assay.label.pull", "pull"),
    "train_model": ("assay.train.run", "run_training"),
    "DatasetVersion": ("assay.store.datasets", "DatasetVersion"),
    "diff_versions": ("assay.store.diff", "diff_versions"),
    "export_version": ("assay.store.export", "export_version"),
}
_ERRORS = ("AssayError", "InputError", "ConfigError", "NotFoundError", "WorkspaceError", "CheckFailed",
           "MissingDependencyError")

__all__ = [*_LAZY, *_ERRORS, "__version__"]


def __getattr__(name: str) -> Any:
    """Import on first use so `import assay` stays cheap."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    if name in _ERRORS:
        return getattr(import_module("assay.errors"), name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
