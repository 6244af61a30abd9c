"""`assay label serve | stop | status | users add|list|reset-password|remove | push | progress | pull`: human review in Argilla."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from assay.cli.common import (
    ConfigOpt,
    DatasetArg,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    err,
    escape,
    handle_errors,
    open_workspace,
    out,
    settings,
)

app = typer.Typer(help="Review dataset versions in Argilla: serve, push, follow progress, pull approved versions.", no_args_is_help=True)
users_app = typer.Typer(help="Manage the embedded server's users (curators).", no_args_is_help=True)
app.add_typer(users_app, name="users")



def _home(ws: Any) -> Path:
    from assay.label import client

    return client.argilla_home(ws.root)


def _say(message: str) -> None:
    err.print(f"[dim]{escape(message)}[/]")


@app.command("serve", epilog="Example: assay label serve --port 6900")
@handle_errors
def serve(
    port: Annotated[int | None, typer.Option("--port", "-p", help="Port on 127.0.0.1 (default: label.port, 6900).", show_default=False)] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help="e.g. postgresql+asyncpg://user:pw@127.0.0.1:5432/argilla (default: SQLite in the workspace).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the workspace's embedded Argilla server (argilla-server 2.8 + web UI) in the background.

    The first start builds the server's own virtual environment (about a minute).
    """
    from assay.label.server import start_server

    ws = open_workspace(workspace)
    info = start_server(_home(ws), port=port or ws.config.label.port, database_url=database_url, progress=None if as_json else _say)
    if as_json:
        emit_json({"ok": True, **info.to_dict(), "password": info.password})
        return
    out.print(f"Argilla is running at [bold]{info.url}[/] (started in {info.startup_seconds} s)")
    out.print(f"owner: {escape(info.username)}  password: {escape(info.password)}")
    out.print("add a curator:  assay label users add alice        (prints their password once)")
    out.print("push a version: assay label push VERSION            stop: assay label stop")


@app.command("stop", epilog="Example: assay label stop")
@handle_errors
def stop(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Stop the embedded server, its worker and a private Redis (data stays in the workspace)."""
    from assay.label.server import stop_server

    was_running = stop_server(_home(open_workspace(workspace)))
    if as_json:
        emit_json({"ok": True, "was_running": was_running})
    else:
        out.print("stopped the Argilla server" if was_running else "no Argilla server was running for this workspace")


@app.command("status", epilog="Example: assay label status --json")
@handle_errors
def status(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Whether the embedded server runs, where, and its users and datasets."""
    from assay.label.server import server_status

    st = server_status(_home(open_workspace(workspace)))
    if as_json:
        emit_json({"ok": True, **st})
        return
    if not st["running"]:
        out.print(f"not running: {escape(st['hint'])}")
        return
    out.print(f"running at [bold]{st['url']}[/] (pid {st['pid']}, {st['database']}, worker {'up' if st['worker_running'] else 'down'})")
    out.print("users: " + escape(", ".join(f"{u['username']} ({u['role']})" for u in st.get("users", []))))
    for d in st.get("datasets", []):
        out.print(f"dataset {escape(d['name'])}: {d.get('records', 0):,} records, {d.get('completed', 0):,} completed")


@users_app.command("add", epilog="Example: assay label users add alice --role annotator")
@handle_errors
def users_add(
    name: Annotated[str, typer.Argument(help="Username (letters, digits, - and _).")],
    role: Annotated[str, typer.Option("--role", help="annotator, admin or owner.")] = "annotator",
    password: Annotated[str | None, typer.Option("--password", help="Password (default: generated).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a user on the embedded server; their password and API key are shown this once."""
    from assay.label.server import add_user, require_server

    ws = open_workspace(workspace)
    user = add_user(_home(ws), name, role=role, password=password)
    if as_json:
        emit_json({"ok": True, **user})
        return
    url = require_server(_home(ws)).url
    out.print(f"created {escape(user['role'])} [bold]{escape(user['username'])}[/] in Argilla workspace {escape(user['workspace'])}")
    out.print(f"password: {escape(user['password'])}\napi key:  {escape(user['api_key'])}\nsign in:  {url}")
    out.print("[yellow]these are shown once: pass them on now[/]")


@users_app.command("list", epilog="Example: assay label users list --json")
@handle_errors
def users_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every user of the embedded server: role, Argilla workspaces and responses so far."""
    from rich.table import Table

    from assay.label.server import list_users

    users = list_users(_home(open_workspace(workspace)))
    if as_json:
        emit_json({"ok": True, "users": users})
        return
    table = Table(title="users")
    for col in ("user", "role", "workspaces", "submitted", "discarded", "draft"):
        table.add_column(col, justify="right" if col in ("submitted", "discarded", "draft") else "left")
    for u in users:
        r = u["responses"]
        table.add_row(escape(u["username"]), u["role"], escape(", ".join(u["workspaces"])), f"{r['submitted']:,}",
                      f"{r['discarded']:,}", f"{r['draft']:,}")
    out.print(table)


@users_app.command("reset-password", epilog="Example: assay label users reset-password alice")
@handle_errors
def users_reset_password(
    name: Annotated[str, typer.Argument(help="Username.")],
    password: Annotated[str | None, typer.Option("--password", help="The new password (default: generated).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a new password (shown this once); their API key and reviews stay."""
    from assay.label.server import reset_password

    user = reset_password(_home(open_workspace(workspace)), name, password)
    if as_json:
        emit_json({"ok": True, **user})
        return
    out.print(f"new password for [bold]{escape(name)}[/]: {escape(user['password'])}")
    out.print("[yellow]shown once: pass it on now[/]")


@users_app.command("remove", epilog="Example: assay label users remove alice")
@handle_errors
def users_remove(
    name: Annotated[str, typer.Argument(help="Username.")],
    delete_responses: Annotated[bool, typer.Option("--delete-responses", help="Also when the user has responses: Argilla deletes them with the user.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a user. Refused while they have responses (pull first) unless --delete-responses."""
    from assay.label.server import remove_user

    result = remove_user(_home(open_workspace(workspace)), name, delete_responses=delete_responses)
    if as_json:
        emit_json({"ok": True, **result})
        return
    gone = f" and {result['deleted_responses']:,} response(s)" if result["deleted_responses"] else ""
    out.print(f"removed user [bold]{escape(name)}[/]{gone}")


PUSH_EXAMPLE = """Examples:

  assay label push train-v1 --sample 200 --priority quality

  assay label push ds-1a2b3c4d5e6f --dataset review-1 --vectors --min-submitted 2 --json
"""


@app.command("push", epilog=PUSH_EXAMPLE)
@handle_errors
def push(
    ref: Annotated[str, typer.Argument(help="Version id, unique id prefix, or tag.")],
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Argilla dataset name (default: the version id).")] = None,
    sample: Annotated[int | None, typer.Option("--sample", help="Push only the first N rows in priority order (default: label.sample, all).", show_default=False)] = None,
    priority: Annotated[str | None, typer.Option("--priority", help="default, quality, dedup, pii or none (default: label.priority).", show_default=False)] = None,
    vectors: Annotated[bool | None, typer.Option("--vectors/--no-vectors", help="Add MiniLM embeddings for similarity search (default: label.vectors).", show_default=False)] = None,
    min_submitted: Annotated[int | None, typer.Option("--min-submitted", help="Responses each record needs (default: label.min_submitted).", show_default=False)] = None,
    overlap: Annotated[float | None, typer.Option("--overlap", help="Share of records (0-1) that also need label.overlap_min_submitted responses, so agreement is measured on a sample (default: label.overlap_fraction).", show_default=False)] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push a version's rows into an Argilla dataset for review; safe to repeat (adds only what is missing).

    Settings come from assay.toml ([label]), overlaid by --config FILE (same layout), then these options.
    Warns when several curators can review but no record gets two reviews (agreement unmeasurable).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from assay.label.push import push as push_api

    ws = open_workspace(workspace)
    cfg = settings(ws, config, **{"label.sample": sample, "label.priority": priority, "label.vectors": vectors,
                                  "label.min_submitted": min_submitted, "label.overlap_fraction": overlap})
    if as_json:
        emit_json({"ok": True, **push_api(ws, ref, dataset=dataset, config=cfg).to_dict()})
        return
    columns = (TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("push", total=None, rate="")

        def tick(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:.0f} records/s" if elapsed else "")

        result = push_api(ws, ref, dataset=dataset, config=cfg, progress=tick, say=lambda line: bar.console.print(f"[dim]{escape(line)}[/]"))
    state = "created" if result.created else ("updated" if result.added else "unchanged:")
    rate = f" in {result.seconds} s ({result.records_per_s} records/s)" if result.added else ""
    out.print(f"{state} Argilla dataset [bold]{escape(result.dataset)}[/] for {result.version}: "
              f"added {result.added:,} record(s){rate}, {result.existing:,} already there")
    out.print(f"overlap: {_overlap_text(result.min_submitted, result.overlap)}")
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    out.print(f"review it at {escape(result.url)}")
    out.print(f"then: assay label progress {escape(result.dataset)}   and   assay label pull {escape(result.dataset)}")


def _overlap_text(min_submitted: int, overlap: dict | None) -> str:
    base = f"every record needs {min_submitted} review{'s' if min_submitted > 1 else ''}"
    if overlap:
        base += f"; about {overlap['fraction']:.0%} of them need {overlap['min_submitted']} (agreement sample)"
    return base


@app.command("progress", epilog="Example: assay label progress ds-1a2b3c4d5e6f --json")
@handle_errors
def progress(
    name: DatasetArg,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-annotator counts (submitted, discarded, draft) and agreement so far."""
    from rich.table import Table

    from assay.label.pull import progress as progress_api

    ws = open_workspace(workspace)
    p = progress_api(ws, name, config=settings(ws, config))
    if as_json:
        emit_json({"ok": True, **p})
        return
    out.print(f"[bold]{escape(name)}[/] ({p['version'] or 'unlinked'}): {p['records']:,} records, "
              f"{p['completed']:,} completed, {p['with_votes']:,} with a vote; {_overlap_text(p['min_submitted'], p['overlap'])}"
              + (f" ({p['overlap_records']:,} records)" if p["overlap"] else ""))
    table = Table(title="annotators")
    for col in ("annotator", "submitted", "discarded", "draft"):
        table.add_column(col, justify="left" if col == "annotator" else "right")
    for user, c in p["annotators"].items():
        table.add_row(escape(user), f"{c['submitted']:,}", f"{c['discarded']:,}", f"{c['draft']:,}")
    out.print(table)
    out.print(_agreement_table(p["agreement"]))
    if p["agreement_note"]:
        out.print(f"[yellow]agreement {escape(p['agreement_note'])}[/]")
    out.print(f"disagreements so far: {p['disagreements']:,}")
    if p["kept_suggestions"]:
        kept = ", ".join(f"{q} {k['share']:.0%} of {k['answers']:,}" for q, k in p["kept_suggestions"].items())
        out.print(f"suggestions kept as they were: {kept} (near 100 % on many records: check for anchoring)")


def _agreement_table(report: dict) -> Any:
    from rich.table import Table

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    table = Table(title=f"agreement ({len(report['annotators'])} annotators, overall α {fmt(report['overall'])})")
    for col in ("question", "units", "agree %", "Krippendorff α", "Fleiss κ", "Cohen κ"):
        table.add_column(col, justify="left" if col == "question" else "right")
    for q, s in report["questions"].items():
        pct = s.get("percent_agreement")
        table.add_row(q, str(s["units"]), "-" if pct is None else f"{100 * pct:.0f}", fmt(s.get("krippendorff_alpha")),
                      fmt(s.get("fleiss_kappa")), fmt(s.get("cohen_kappa")))
    return table


PULL_EXAMPLE = """Examples:

  assay label pull ds-1a2b3c4d5e6f --name train-approved

  assay label pull review-1 --policy min-votes:2 --min-agreement 0.6 --json
"""


@app.command("pull", epilog=PULL_EXAMPLE)
@handle_errors
def pull(
    name: DatasetArg,
    policy: Annotated[str | None, typer.Option("--policy", help="majority, unanimous or min-votes:N (default: label.policy).", show_default=False)] = None,
    min_agreement: Annotated[float | None, typer.Option("--min-agreement", help="Refuse (exit 1) below this agreement on `decision` (default: label.min_agreement).", show_default=False)] = None,
    metric: Annotated[str | None, typer.Option("--agreement-metric", help="krippendorff_alpha, fleiss_kappa, cohen_kappa or percent_agreement: what --min-agreement is compared with (default: label.agreement_metric).", show_default=False)] = None,
    tag: Annotated[str | None, typer.Option("--name", "-n", help="Tag the approved version with this name (moves an existing tag).", show_default=False)] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn submitted reviews into an `approved` dataset version (rejected rows go to its rejects).

    Exit 1 when agreement is below --min-agreement; exit 2 when nothing was submitted yet.
    """
    from assay.label.pull import pull as pull_api

    ws = open_workspace(workspace)
    cfg = settings(ws, config, **{"label.policy": policy, "label.min_agreement": min_agreement, "label.agreement_metric": metric})
    r = pull_api(ws, name, name=tag, config=cfg)
    if as_json:
        emit_json({"ok": True, **r.to_dict()})
        return
    state = "created" if r.created else "already existed (same reviews)"
    removed = ", ".join(f"{k}: {v:,}" for k, v in r.rejected.items()) or "none"
    tagged = f" (tagged {escape(r.name)})" if r.name else ""
    out.print(f"approved version [bold]{r.version}[/]{tagged} {state}: {r.kept:,} rows kept ({r.corrected:,} corrected), "
              f"rejected {removed}; policy {escape(r.policy)}, {r.required_votes} vote(s) required")
    out.print(_agreement_table(r.agreement))
    if r.agreement_note:
        out.print(f"[yellow]agreement {escape(r.agreement_note)}[/]")
    for d in r.disagreements[:10]:
        votes = ", ".join(f"{escape(a)}={escape(v)}" for a, v in d["votes"].items())
        out.print(f"disagreement {escape(d['id'])}: {votes} → {escape(d['outcome'])}")
    out.print(f"inspect: assay data show {escape(r.name or r.version)}")
