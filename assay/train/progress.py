"""What a run shows and records: a rich progress line and a JSONL metrics log.

The log (`metrics.jsonl`) holds one object per optimizer step (`"split": "train"`) and per validation
(`"split": "val"`). On resume it is cut back to the lines the checkpoint had seen, so the history of a
resumed run equals that of an uninterrupted one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from assay.store.atomic import write_bytes_atomic

METRICS = "metrics.jsonl"


class MetricsLog:
    """Append-only JSONL of train and val losses; counts its lines for the checkpoint."""

    def __init__(self, path: Path, *, keep_lines: int = 0) -> None:
        self.path = path
        self.lines = _truncate(path, keep_lines)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        self.lines += 1

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class NullMetricsLog(MetricsLog):
    """The metrics log of a process other than the main one: counts nothing, writes nothing."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        return None

    def records(self) -> list[dict[str, Any]]:
        return []


def _truncate(path: Path, keep: int) -> int:
    """Keep the first `keep` lines (those a checkpoint covers); a fresh run starts empty."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.is_file() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, "".join(lines[:keep]).encode())  # a crash here must not lose the kept lines
    return min(keep, len(lines))


class ProgressLine:
    """One line per stage: step, loss, val loss, tokens/s and ETA. Silent when disabled."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: Any = None
        self._tps = 0.0
        self._last_time = time.perf_counter()

    def start(self, stage: str, total: int, done: int) -> None:
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(stage, total=total, completed=done, loss="-", val="-", tps="-")
        self._last_time = time.perf_counter()

    def step(self, *, loss: float, tokens: int) -> float:
        """Advance one step; returns the smoothed tokens/s it shows."""
        now = time.perf_counter()
        rate = tokens / max(now - self._last_time, 1e-9)
        self._last_time = now
        self._tps = rate if self._tps == 0 else 0.9 * self._tps + 0.1 * rate
        if self._progress is not None:
            self._progress.update(self._task, advance=1, loss=f"{loss:.4f}", tps=f"{self._tps:,.0f}")
        return rate

    def validated(self, loss: float) -> None:
        self._last_time = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._task, val=f"{loss:.4f}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
