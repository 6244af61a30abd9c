"""`assay batch run | status`: the whole loop from one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from assay.cli.common import JsonOpt, WorkspaceOpt, emit_json, err, escape, handle_errors, open_workspace, out

app = typer.Typer(help="Run the whole loop from one batch file: curate, review, train candidates, evaluate, gate, promote.", no_args_is_help=True)

RUN_EXAMPLE = """Examples:

  assay batch run batch.toml

  assay batch run batch.toml --wait --poll 60

Exit codes: 0 done or waiting for reviews (the status says what for), 1 no candidate passed, 2 bad input.
"""


@app.command("run", epilog=RUN_EXAMPLE)
@handle_errors
def run(
    config: Annotated[Path, typer.Argument(help="Batch file (TOML): [batch], [review], [[candidates]], [promote], and any assay.toml table.")],
    wait: Annotated[bool, typer.Option("--wait", help="Poll Argilla until the reviews are in, then go on (default: exit 0 with the status).")] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between polls with --wait.")] = 30.0,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run or continue a batch. A rerun skips what is done and resumes what was interrupted (a killed
    training run resumes from its checkpoint and ends with the same model version id)."""
    from assay.batch import run_batch

    ws = open_workspace(workspace)
    say = None if as_json else (lambda message: err.print(f"[dim]{escape(message)}[/]"))

    def waiting(p: dict[str, Any]) -> None:
        if say:
            say(f"reviews: {p['completed']:,} of {p['needed']:,} records complete; polling every {poll:.0f} s")

    outcome = run_batch(ws, config, wait=wait, poll_s=poll, say=say, on_wait=waiting)
    if as_json:
        emit_json({"ok": outcome.state != "failed", **outcome.to_dict()})
    else:
        _render(outcome.to_dict())
    passed = any(c.get("eval", {}).get("passed") for c in outcome.data.get("candidates", {}).values())
    if outcome.state == "done" and not passed:
        raise typer.Exit(1)


def _render(data: dict[str, Any]) -> None:
    from rich.table import Table

    from assay.batch.summary import COLUMNS, candidate_rows

    out.print(f"batch [bold]{escape(data['batch'])}[/]: {escape(data['state'])} — {escape(data.get('message') or '')}")
    for stage, info in data.get("stages", {}).items():
        result = info.get("version") or info.get("model") or info.get("mode") or ""
        note = info.get("waiting_for") or info.get("reason") or info.get("why") or ""
        out.print(f"  {stage}: {escape(result)} {escape(note)}")
    rows = candidate_rows(data)
    if rows:
        table = Table(title="candidates")
        for col in COLUMNS[:-2]:
            table.add_column(col)
        for row in rows:
            table.add_row(*(escape(row[c]) for c in COLUMNS[:-2]))
        out.print(table)
    if data.get("summary"):
        out.print(f"summary: {escape(data['summary'])}")


@app.command("status", epilog="Example: assay batch status batch.toml --json")
@handle_errors
def status(
    config: Annotated[Path | None, typer.Argument(help="Batch file or batch name (default: every batch of the workspace).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every stage with its version ids and times, and what the batch waits for."""
    from assay.batch import batch_status

    states = batch_status(open_workspace(workspace), config)
    if as_json:
        emit_json({"ok": True, "batches": states})
        return
    if not states:
        out.print("no batch has run in this workspace: start one with `assay batch run FILE`")
    for data in states:
        _render({**data, "message": data.get("stages", {}).get("review", {}).get("waiting_for") or ""})
