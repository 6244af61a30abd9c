"""`assay curate run`: raw files → a curated dataset version."""

from __future__ import annotations

from typing import Annotated

import typer

from assay.cli.common import (
    ConfigOpt,
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
from assay.errors import ConfigError

app = typer.Typer(help="Curate raw files into dataset versions.", no_args_is_help=True)

EXAMPLE = """Examples:

  assay curate run data/train.jsonl --name train-v1

  assay curate run 'raw/*.jsonl' raw/extra.csv --map prompt=instruction --map response=output --json

  RAY_ADDRESS=head-node:6379 assay curate run 'raw/*.jsonl' --engine ray
"""


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        canonical, sep, column = pair.partition("=")
        if not sep or not canonical or not column:
            raise ConfigError(f"--map `{pair}` is not CANONICAL=COLUMN", hint="e.g. --map prompt=instruction")
        mapping[canonical.strip()] = column.strip()
    return mapping


@app.command("run", epilog=EXAMPLE)
@handle_errors
def run(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or glob patterns (JSONL[.gz], JSON, CSV/TSV, Parquet, HF save_to_disk folders), on disk or at fsspec URLs (s3://..., gs://..., https://...).")],
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Tag the resulting version with this name (moves an existing tag).")] = None,
    strict: Annotated[bool | None, typer.Option("--strict/--no-strict", help="Exit 2 instead of quarantining malformed rows (default: curate.strict).", show_default=False)] = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help="Map a canonical column to yours, e.g. prompt=instruction (repeatable; overrides curate.read.columns).")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="local (this process) or ray (each block a Ray task; needs assay[ray]; "
                                               "joins RAY_ADDRESS / curate.ray.address, else starts a local cluster). Default: curate.engine. "
                                               "Both write the same version.", show_default=False)] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read raw files, run the curation steps, and write an immutable dataset version.

    Rows a step removes go to the version's rejects with step and reason; lines that cannot be
    parsed go to its quarantine with file, line and error. Rerunning with the same inputs and
    config is a no-op that prints the same version id.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from assay.curate.pipeline import curate
    from assay.curate.report import write_report

    ws = open_workspace(workspace)
    base = ws.load_config(config)
    columns = {**base.curate.read.columns, **_mapping(mapping)} if mapping else None
    cfg = settings(ws, config, **{"curate.strict": strict, "curate.read.columns": columns, "curate.engine": engine}).curate
    if as_json:
        result = curate(ws, inputs, cfg, name=name)
        report = write_report(ws, result.write.version)
        emit_json({"ok": True, **result.to_dict(), "report": report["html"]})
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("reading", total=None)

        def progress(event: str, info: dict) -> None:
            if event == "read":
                bar.update(task, description=f"reading {escape(info['source'])}: {info['rows']:,} rows, {info['quarantined']:,} quarantined")
            elif event == "fetch":
                bar.update(task, description=f"fetching {escape(info['url'])}")
            elif event == "write":
                bar.update(task, description=f"writing the version ({info['rows']:,} rows)")
            else:
                bar.update(task, description=f"step {info['step']} on {info['rows']:,} rows")

        result = curate(ws, inputs, cfg, name=name, progress=progress)
        bar.update(task, description="writing the report")
        report = write_report(ws, result.write.version)
    _render(result)
    out.print(f"report: {escape(report['html'])}")


def _render(result) -> None:
    from assay.cli.render import steps_table

    counts = result.counts
    out.print(steps_table(counts))
    v = result.write.version
    state = "unchanged (same inputs and config)" if result.reused else ("created" if result.write.created else "already existed")
    out.print(f"version [bold]{v.id}[/] ({v.kind}, {counts['kept']:,} rows) {state}")
    if counts.get("quarantined"):
        where = ", ".join(f"{escape(s)}: {n}" for s, n in counts.get("quarantined_by_source", {}).items())
        out.print(f"[yellow]{counts['quarantined']:,} malformed row(s) quarantined[/] ({where}); "
                  f"see them with: assay data export {v.id} --part quarantine --format jsonl --out quarantine.jsonl")


@app.command("report", epilog="Example: assay curate report train-v1 --json")
@handle_errors
def report(
    ref: Annotated[str, typer.Argument(help="Version id, unique id prefix, or tag.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write and show a version's curation report (terminal table, JSON, self-contained HTML).

    Shows counts per step and reason, examples of each rejection reason, quarantined lines,
    distributions of lengths and quality signals, and duplicate cluster sizes.
    """
    from assay.cli.render import steps_table
    from assay.curate.report import write_report

    ws = open_workspace(workspace)
    rep = write_report(ws, ws.datasets.get(ref))
    if as_json:
        emit_json({"ok": True, **rep})
        return
    out.print(steps_table(rep["counts"]))
    for key, rows in rep["examples"].items():
        out.print(f"[bold]{escape(key)}[/] e.g. " + "; ".join(f"{escape(r.get('source'))}:{r.get('source_line')} {escape(r['text'][:80])!r}" for r in rows[:2]))
    dup = rep["duplicates"]
    out.print(f"duplicate clusters: {dup.get('clusters', 0):,} (largest {dup.get('largest', 0)}); splits: {rep['splits'] or 'none'}")
    out.print(f"html: {escape(rep['html'])}\njson: {escape(rep['json'])}")
