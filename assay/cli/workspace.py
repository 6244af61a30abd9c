"""`assay init`, `assay doctor` and `assay demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import JsonOpt, WorkspaceOpt, emit_json, err, escape, handle_errors, open_workspace, out


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
def demo(
    base: Annotated[str | None, typer.Option("--base", help="Base model instead of SmolLM2-135M-Instruct (a folder, .gguf file or cached hub id).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A few training steps and a tiny suite: a smoke test of the loop, not a result.")] = False,
    port: Annotated[int | None, typer.Option("--port", help="Port of the embedded Argilla server (default: label.port).", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The whole loop on a real model, unattended: generate a task with realistic faults, curate it, review it in
    Argilla with two simulated reviewers, train LoRA and prompt tuning on SmolLM2-135M-Instruct, evaluate both
    against the base model, gate, and promote the best passing candidate."""
    from assay.demo import run_demo

    say = None if as_json else (lambda message: err.print(f"[dim]{escape(message)}[/]"))
    result = run_demo(workspace, base=base, quick=quick, port=port, say=say)
    if as_json:
        emit_json({"ok": True, **result})
        return
    _show_demo(result)


def _show_demo(result: dict) -> None:
    out.print(f"[bold]demo {escape(result['state'])}[/] in {result['seconds']:.0f} s: {escape(result['message'])}")
    for name, cand in result.get("candidates", {}).items():
        ev, train = cand.get("eval", {}), cand.get("train", {})
        verdict = "PASS" if ev.get("passed") else ("FAIL" if ev else "not evaluated")
        primary = ev.get("primary") or {}
        gain = f"{primary.get('metric')} {primary.get('candidate', 0):.3f} vs base {primary.get('baseline', 0):.3f}" if primary else ""
        out.print(f"  {escape(name)} ({escape(train.get('model') or '-')}): gate {verdict}  {escape(gain)}")
        for reason in ev.get("reasons", []):
            out.print(f"      - {escape(reason)}")
        if ev.get("path"):
            out.print(f"      report: {escape(ev['path'])}/report.html")
    argilla = result["argilla"]
    out.print(f"review UI: {escape(argilla['url'])}  sign in as {escape(argilla['username'])} / {escape(argilla['password'])}")
    out.print(f"  (the server keeps running for that login; stop it with: assay --workspace {escape(result['workspace'])} label stop)")
    out.print(f"reviews were given by SIMULATED reviewers: {escape(', '.join(result['reviewers']))}")
    out.print(f"batch summary: {escape(result['summary'])}   rerun: assay batch run {escape(result['batch'])}")
