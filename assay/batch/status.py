"""`assay batch status`: every stage of a batch with its versions, times and what it waits for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assay.batch.run import BATCHES, batch_dir
from assay.batch.state import STATE_FILE
from assay.batch.summary import candidate_rows
from assay.errors import NotFoundError


def batch_status(ws: Any, ref: Path | str | None = None) -> list[dict[str, Any]]:
    """The state of one batch (by its file or name), or of every batch in the workspace."""
    if ref is None:
        return [_read(path) for path in sorted((ws.layout.root / BATCHES).glob(f"*/{STATE_FILE}"))]
    name = _name(ws, ref)
    path = batch_dir(ws, name) / STATE_FILE
    if not path.is_file():
        raise NotFoundError(f"batch {name} has not run in this workspace", hint=f"start it with `assay batch run {ref}`")
    return [_read(path)]


def _name(ws: Any, ref: Path | str) -> str:
    path = Path(ref)
    if path.suffix == ".toml" and path.is_file():
        from assay.batch.config import load_batch

        return load_batch(ws, path).name
    return str(ref)


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data | {"candidate_rows": candidate_rows(data), "state": data.get("state") or _current(data)}


def _current(data: dict[str, Any]) -> str:
    if data.get("stages", {}).get("review", {}).get("waiting_for"):
        return "waiting"
    return "running or interrupted"
