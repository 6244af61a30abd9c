"""What every command shares: --workspace and --json options, output, and error → exit code mapping."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assay.errors import AssayError

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace directory (default: $ASSAY_HOME, else ./.assay).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def open_workspace(workspace: Path | None) -> Any:
    """The workspace a command works in (imported lazily so `--help` stays fast)."""
    from assay.workspace import Workspace

    return Workspace.open(workspace)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def handle_errors(fn: Callable) -> Callable:
    """Turn AssayError into a clear message (or a JSON error object) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except AssayError as exc:
            if as_json:
                emit_json({"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
            else:
                err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
                if exc.hint:
                    err.print(f"[bold]fix:[/] {exc.hint}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def escape(text: object) -> str:
    """Data text shown in rich output must never be read as markup."""
    from rich.markup import escape as _escape

    return _escape(str(text))
