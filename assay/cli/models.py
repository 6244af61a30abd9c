"""`assay models list | show | promote | reject | history`."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli.common import JsonOpt, WorkspaceOpt, emit_json, escape, handle_errors, open_workspace, out
from assay.cli.train import show, summary

app = typer.Typer(help="Model versions: inspect, promote on a passing report, reject, and their history.", no_args_is_help=True)


@app.command("list", epilog="Example: assay models list --json")
@handle_errors
def list_models(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List model versions with their status (candidate, promoted, superseded, rejected) and aliases."""
    from rich.table import Table

    entries = open_workspace(workspace).models.list()
    if as_json:
        emit_json({"ok": True, "models": [e.to_dict() for e in entries]})
        return
    table = Table(title="model versions")
    for col in ("id", "status", "aliases", "trained on", "created"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.id, e.status, escape(", ".join(e.tags)), ", ".join(e.parents), e.created_at[:19].replace("T", " "))
    out.print(table if entries else "no model versions yet: train one with `assay train run`")


@app.command("show", epilog="Example: assay models show mv-1a2b3c4d5e6f --json")
@handle_errors
def show_model(
    ref: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model version: base model and hash, data versions, losses, reports, files."""
    ws = open_workspace(workspace)
    model = ws.models.get(ref)
    reports = [{"id": e.id, "status": e.status, "created": e.created_at} for e in ws.reports.for_model(model.id)]
    if as_json:
        from assay.evaluate.watch import history

        emit_json({"ok": True, **summary(model), "aliases": model.entry.tags, "reports": reports,
                   "monitoring": history(ws, model.id), "manifest": model.manifest})
        return
    show(model, False)
    for r in reports:
        out.print(f"report {r['id']}: gate {r['status']} ({r['created'][:19].replace('T', ' ')})")
    _monitoring(ws, model.id)


def _monitoring(ws, model_id: str) -> None:
    """The model's `eval watch` history as a small plot: one bar per check, the reference, crossings marked."""
    from assay.evaluate.watch import history

    points = history(ws, model_id)
    if not points:
        return
    top = max(max(p["value"] for p in points), max((p["reference"] or 0) for p in points), 1e-9)
    out.print(f"monitoring ({points[-1]['metric']}; reference {points[-1]['reference']} from report {points[-1]['reference_report']}):")
    for p in points:
        bar = "█" * max(1, round(30 * p["value"] / top))
        mark = "  [red]crossed[/]" if p["crossed"] else ""
        out.print(f"  {p['at'][:16].replace('T', ' ')}  {bar:<30} {p['value']:.4f}  on {p['data']}{mark}")


PROMOTE_EXAMPLE = """Examples:

  assay models promote mv-1a2b3c4d5e6f

  assay models promote mv-1a2b3c4d5e6f --alias staging

  assay models promote mv-1a2b3c4d5e6f --force --reason "hotfix approved by the release board" --json
"""


@app.command("promote", epilog=PROMOTE_EXAMPLE)
@handle_errors
def promote(
    ref: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias that will point at it.")] = "production",
    force: Annotated[bool, typer.Option("--force", help="Promote without a passing, verified report (needs --reason; recorded).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required with --force).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Promote a model version: its latest report must pass the gate, verify (signature and every hash) and
    match exactly this version. Exit 1 with the reasons otherwise."""
    from assay.evaluate.promote import promote as promote_api

    p = promote_api(open_workspace(workspace), ref, alias=alias, force=force, reason=reason)
    if as_json:
        emit_json({"ok": True, **p.to_dict()})
        return
    how = "[yellow]FORCED[/] " if p.forced else ""
    out.print(f"{how}promoted [bold]{p.model}[/] as {escape(p.alias)} on report {p.report or '-'}"
              + (f" (replaces {p.previous})" if p.previous else ""))


@app.command("reject", epilog='Example: assay models reject mv-1a2b3c4d5e6f --reason "answers drift off format"')
@handle_errors
def reject(
    ref: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (recorded).")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a model version rejected, with the reason, in its history."""
    from assay.evaluate.promote import reject as reject_api

    ws = open_workspace(workspace)
    reject_api(ws, ref, reason=reason)
    model = ws.models.get(ref)
    if as_json:
        emit_json({"ok": True, "model": model.id, "status": model.status})
    else:
        out.print(f"rejected {model.id}: {escape(reason)}")


@app.command("history", epilog="Example: assay models history --json")
@handle_errors
def history(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every promotion, rejection and demotion: when, by whom, on which report, and why."""
    from rich.table import Table

    from assay.evaluate.promote import history as history_api

    events = history_api(open_workspace(workspace))
    if as_json:
        emit_json({"ok": True, "events": events})
        return
    table = Table(title="model history")
    for col in ("when", "action", "model", "alias", "report", "by", "reason"):
        table.add_column(col)
    for e in events:
        action = e["action"] + (" (forced)" if e["forced"] else "")
        table.add_row(e["at"][:19].replace("T", " "), action, e["version_id"], escape(e["alias"] or ""),
                      e["report_id"] or "", escape(e["actor"]), escape(e["reason"] or ""))
    out.print(table if events else "no promotions or rejections yet")
