"""What every command shares: --workspace, --json and --config, output, and error → exit code mapping.

`--workspace` and `--json` are accepted before the command group (`assay -w WS curate run ...`) and
after the command (`assay curate run ... -w WS`); the later one wins. Modules here import only typer
and rich at start-up, so `assay --help` stays fast: the API is imported inside each command.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assay.errors import AssayError, storage_error

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace directory (default: $ASSAY_HOME, else ./.assay).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else.")]
DatasetArg = Annotated[str, typer.Argument(help="Argilla dataset name (as printed by push).")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file with the layout of assay.toml, laid over the workspace's settings.", show_default=False),
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


@dataclass
class GlobalOptions:
    """Options given before the command group; a command's own options win over them."""

    workspace: Path | None = None
    as_json: bool = False


GLOBAL = GlobalOptions()


def open_workspace(workspace: Path | None) -> Any:
    """The workspace a command works in (imported lazily so `--help` stays fast)."""
    from assay.workspace import Workspace

    return Workspace.open(workspace)


def settings(ws: Any, config: Path | None, **options: Any) -> Any:
    """The configuration a command runs with: assay.toml, --config, then its options as dotted keys.

    `options` maps dotted keys to command-line values (None = not given):
    `settings(ws, config, **{"label.sample": sample})`.
    """
    return ws.load_config(config, options)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def handle_errors(fn: Callable) -> Callable:
    """Apply the global options, and turn AssayError into a clear message (or a JSON error) and its exit code."""
    names = set(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "workspace" in names and kwargs.get("workspace") is None:
            kwargs["workspace"] = GLOBAL.workspace
        if "as_json" in names:
            kwargs["as_json"] = bool(kwargs.get("as_json")) or GLOBAL.as_json
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except AssayError as exc:
            report_error(exc, as_json)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            storage = storage_error(exc)
            if storage is None:
                raise
            report_error(storage, as_json)
            raise typer.Exit(storage.exit_code) from None

    return wrapper


def report_error(exc: AssayError, as_json: bool) -> None:
    """Messages are data: brackets in them (`[train.lora]`) must print as they are, not as markup."""
    if as_json:
        emit_json({"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
        return
    err.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
    if exc.hint:
        err.print(f"[bold]fix:[/] {escape(exc.hint)}", markup=True, highlight=False)


def escape(text: object) -> str:
    """Data text shown in rich output must never be read as markup."""
    from rich.markup import escape as _escape

    return _escape(str(text))
