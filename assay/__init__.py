"""assay: curate, review, train and gate fine-tuning data and models.

The CLI is a thin layer over this API:

>>> from assay import Workspace, curate                    # doctest: +SKIP
>>> ws, _ = Workspace.init("./.assay")                     # doctest: +SKIP
>>> result = curate(ws, ["data/train.jsonl"])              # doctest: +SKIP
>>> ws.datasets.get(result.version_id).data().collect()    # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Workspace": "assay.workspace",
    "doctor": "assay.workspace",
    "curate": "assay.curate.pipeline",
    "CurateConfig": "assay.curate.config",
    "AssayConfig": "assay.config",
    "DatasetVersion": "assay.store.datasets",
    "diff_versions": "assay.store.diff",
    "export_version": "assay.store.export",
}
_ERRORS = ("AssayError", "InputError", "ConfigError", "NotFoundError", "WorkspaceError", "CheckFailed")

__all__ = [*_LAZY, *_ERRORS, "__version__"]


def __getattr__(name: str) -> Any:
    """Import on first use so `import assay` stays cheap (no polars until needed)."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _ERRORS:
        return getattr(import_module("assay.errors"), name)
    raise AttributeError(f"module 'assay' has no attribute {name!r}")
