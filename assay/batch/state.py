"""What a batch has done so far: one JSON file per batch, replaced atomically after every stage.

    <workspace>/batches/<name>/state.json
    {"batch": "orders-v1", "file_sha256": "...", "stages": {"curate": {...}, "review": {...}, ...},
     "candidates": {"lora": {"train": {...}, "eval": {...}}}, "promote": {...}}

Stages are content-addressed (a rerun of curation or a pull returns the same version; a training
run resumes from its checkpoint and ends with the same model id), so the state only remembers ids
and times: a rerun skips a stage whose result is recorded for the same settings and still exists.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.store.atomic import write_bytes_atomic
from assay.store.manifest import now_iso

STATE_FILE = "state.json"


@dataclass
class BatchState:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, name: str) -> BatchState:
        path = folder / STATE_FILE
        data = json.loads(path.read_text()) if path.is_file() else {"batch": name, "stages": {}, "candidates": {}}
        return cls(path, data)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data["updated_at"] = now_iso()
        write_bytes_atomic(self.path, (json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n").encode())

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"].get(name) or {}

    def record(self, name: str, **values: Any) -> dict[str, Any]:
        """Set a stage's values (merged) and save at once."""
        entry = {**self.stage(name), **values}
        self.data["stages"][name] = entry
        self.save()
        return entry

    def candidate(self, name: str) -> dict[str, Any]:
        return self.data["candidates"].setdefault(name, {})

    def record_candidate(self, name: str, part: str, **values: Any) -> dict[str, Any]:
        entry = {**self.candidate(name).get(part, {}), **values}
        self.candidate(name)[part] = entry
        self.save()
        return entry


class Timer:
    """Wall time of a stage, recorded with its start and end."""

    def __enter__(self) -> Timer:
        self.started_at, self._t0 = now_iso(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.monotonic() - self._t0, 1)
        self.finished_at = now_iso()

    def fields(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "finished_at": self.finished_at, "seconds": self.seconds}
