"""What the Ray engine's modules share: Ray itself, imported on demand, and reading a task's result."""

from __future__ import annotations

from typing import Any

from assay.errors import AssayError, MissingDependencyError


def ray_module() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Ray engine needs `ray`, which is not installed ({exc})",
            hint="pip install 'assay[ray]', or run with the local engine ([curate] engine = \"local\")",
        ) from exc
    return ray


def get(ray: Any, ref: Any) -> Any:
    """ray.get, with a step's own error raised as itself and Ray's failures as a clear error."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, AssayError):
            raise exc.cause from None
        raise AssayError(
            f"a curation task failed on the Ray cluster: {exc.cause!r}", hint="see the traceback above; no version was written"
        ) from exc
    except ray.exceptions.RayError as exc:
        raise AssayError(
            f"a curation task was lost on the Ray cluster ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "no version was written",
            hint="check the cluster's workers and memory (`ray status`); raise [curate.ray] retries to retry lost tasks more",
        ) from exc
