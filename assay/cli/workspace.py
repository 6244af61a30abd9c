"""`assay init`, `assay doctor` and `assay demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import JsonOpt, WorkspaceOpt, emit_json, escape, handle_errors, open_workspace, out


def register(app: typer.Typer) -> None:
    app.command("init", epilog="Example: assay init ./.assay")(init)
    app.command("doctor", epilog="Example: assay doctor --workspace ./.assay")(doctor_cmd)
    app.command("demo", epilog="Example: assay demo --workspace /tmp/assay-demo")(demo)


@handle_errors
def init(
    directory: Annotated[Path | None, typer.Argument(help="Workspace directory (default: --workspace, $ASSAY_HOME or ./.assay).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace: a commented assay.toml, the catalog and folders for versions. Safe to rerun."""
    from assay.workspace import Workspace

    ws, created = Workspace.init(directory or workspace)
    if as_json:
        emit_json({"ok": True, "workspace": str(ws.root), "created": created, "config": str(ws.config_path)})
        return
    verb = "created" if created else "already exists:"
    out.print(f"workspace {verb} {escape(ws.root)}\nconfig: {escape(ws.config_path)} (every setting, commented)")


@handle_errors
def doctor_cmd(
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    quick: Annotated[bool, typer.Option(help="Check sizes only, not content hashes.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report leftovers without removing them.")] = False,
) -> None:
    """Remove leftovers of interrupted writes and check every version's files against its manifest.

    Exit code 1 when a catalogued version is damaged.
    """
    from assay.workspace import doctor

    report = doctor(open_workspace(workspace), deep=not quick, fix=not dry_run)
    if as_json:
        emit_json({"ok": report.ok, "checked": report.checked, "removed": report.removed,
                   "recovered": report.recovered, "problems": report.problems})
    else:
        verb = "would remove" if dry_run else "removed"
        for path in report.removed:
            out.print(f"{verb} leftover {escape(path)}")
        for vid in report.recovered:
            out.print(f"recovered complete but uncatalogued version {vid}")
        for problem in report.problems:
            out.print(f"[red]problem:[/] {escape(problem)}")
        out.print(f"checked {report.checked} version(s): " + ("ok" if report.ok else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        raise typer.Exit(1)


@handle_errors
def demo(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Run the demo end to end in a workspace: generate sample data, curate it, show the version."""
    from assay.cli.render import steps_table
    from assay.demo import run_demo

    result = run_demo(workspace, echo=None if as_json else out.print)
    if as_json:
        emit_json({"ok": True, **result})
        return
    out.print(steps_table(result["counts"]))
    out.print(f"report: {escape(result['report'])}")
    out.print(f"next: assay data show {result['version']} --workspace {escape(result['workspace'])}")
