"""Shared fixtures: a fresh workspace per test and the real `assay` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ASSAY_BIN = Path(sys.executable).parent / "assay"


@pytest.fixture
def ws(tmp_path):
    from assay.workspace import Workspace

    workspace, _ = Workspace.init(tmp_path / "ws")
    return workspace


def write_jsonl(path: Path, rows: list, extra_lines: dict[int, str] | None = None) -> Path:
    """Rows as JSONL; extra_lines inserts raw text at 0-based line positions (for malformed input)."""
    lines = [json.dumps(r, ensure_ascii=False) if not isinstance(r, str) else r for r in rows]
    for pos, raw in sorted((extra_lines or {}).items()):
        lines.insert(pos, raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, check: int | None = 0) -> subprocess.CompletedProcess:
    """Run the installed `assay` console script, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k != "ASSAY_HOME"}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    proc = subprocess.run([str(ASSAY_BIN), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"assay {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_json(*args: str, **kw) -> dict:
    proc = run_cli(*args, "--json", **kw)
    return json.loads(proc.stdout)


def sentence(i: int) -> str:
    """An ordinary English sentence that passes the default quality filters, distinct per i."""
    return f"The library on street number {i} opens at nine and the staff lend books to every visitor."
