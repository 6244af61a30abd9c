"""What the Ray engine's modules share: Ray itself, imported on demand, reading a task's result, and a
block received as an Arrow table."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from assay.errors import AssayError, MissingDependencyError
from assay.store.blocks import align


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


def frame_of(table: pa.Table, schema: pl.Schema | None = None) -> pl.DataFrame:
    """A block a task received as an Arrow table, as a frame (with exactly `schema` when given)."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df if schema is None else align(df, schema, table.num_rows)
