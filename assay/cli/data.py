"""`assay data list | show | export | tag | diff`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from assay.cli.common import JsonOpt, WorkspaceOpt, emit_json, escape, handle_errors, open_workspace, out
from assay.errors import ConfigError

app = typer.Typer(help="Inspect, compare, tag and export dataset versions.", no_args_is_help=True)



@app.command("list", epilog="Example: assay data list --json")
@handle_errors
def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List dataset versions, oldest first."""
    from assay.cli.render import versions_table

    entries = open_workspace(workspace).datasets.list()
    if as_json:
        emit_json({"ok": True, "versions": [e.to_dict() for e in entries]})
    elif not entries:
        out.print("no dataset versions yet: create one with `assay curate run FILE`")
    else:
        out.print(versions_table(entries))


@app.command("show", epilog="Example: assay data show ds-1a2b3c4d5e6f")
@handle_errors
def show(
    ref: Annotated[str, typer.Argument(help="Version id, unique id prefix, or tag.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version: counts per step and reason, schema, parents, inputs and the resolved config."""
    from assay.cli.render import steps_table

    v = open_workspace(workspace).datasets.get(ref)
    m = v.manifest
    if as_json:
        emit_json({"ok": True, "tags": v.entry.tags, "path": str(v.path), "manifest": m})
        return
    out.print(f"[bold]{v.id}[/]  kind={m['kind']}  rows={m['rows']:,}  created={m['created_at']}")
    out.print(f"tags: {escape(', '.join(v.entry.tags) or '-')}   parents: {', '.join(m['parents']) or '-'}")
    for f in m.get("inputs", []):
        out.print(f"input: {escape(f['path'])} ({f['format']}, {f['bytes']:,} bytes, sha256 {f['sha256'][:12]})")
    if "steps" in m.get("counts", {}):
        out.print(steps_table(m["counts"]))
    if review := m.get("review"):
        argilla, overall = review.get("argilla", {}), review.get("agreement", {}).get("overall")
        out.print(f"review: Argilla dataset {escape(argilla.get('dataset'))} ({argilla.get('dataset_id')}), "
                  f"policy {review.get('policy')}, {review.get('required_votes')} vote(s) required, "
                  f"agreement {escape(json.dumps(overall))}, {review.get('disagreements_total', 0)} disagreement(s), "
                  f"responses sha256 {str(review.get('responses_sha256'))[:12]}")
    out.print("schema: " + escape(", ".join(f"{c}: {t}" for c, t in m["schema"].items())))
    out.print(f"config (hash {m['config_hash'][:12]}):")
    out.print(escape(json.dumps(m["config"], indent=2)))
    out.print(f"files: {escape(v.path)}")


@app.command("export", epilog="Examples: assay data export train-v1 --format jsonl --out train.jsonl\n\n"
             "assay data export train-v1 --part all --out s3://bucket/versions/train-v1/")
@handle_errors
def export(
    ref: Annotated[str, typer.Argument(help="Version id, unique id prefix, or tag.")],
    out_path: Annotated[str, typer.Option("--out", "-o", help="File to write (replaced atomically), or an fsspec URL (s3://bucket/train.jsonl; uploaded in one put once written); a folder or URL prefix with --part all.")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="jsonl (the default) or parquet; --part all is always parquet.")] = None,
    part: Annotated[str, typer.Option("--part", help="data (kept rows), rejects, quarantine, or all (the whole version: its Parquet files, then its manifest).")] = "data",
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a version's rows (or its rejects or quarantine) to JSONL or Parquet, or the whole version,
    on disk or in an object store."""
    from assay.store.export import export_all, export_version

    if part == "all" and fmt not in (None, "parquet"):
        raise ConfigError(f"--part all exports the version's Parquet files, not {fmt}", hint="drop --format, or export one part as JSONL")
    ws = open_workspace(workspace)
    v = ws.datasets.get(ref)
    if part == "all":
        fmt, rows = "parquet", export_all(v, out_path, staging=ws.layout.tmp)
    else:
        fmt = fmt or "jsonl"
        rows = {part: export_version(v, out_path, fmt=fmt, part=part, staging=ws.layout.tmp)}
    if as_json:
        emit_json({"ok": True, "version": v.id, "part": part, "format": fmt,
                   "rows": rows[part] if part != "all" else rows, "out": str(out_path)})
    else:
        for name, n in rows.items():
            out.print(f"wrote {n:,} {name} rows of {v.id} to {escape(out_path)}")


@app.command("tag", epilog="Example: assay data tag ds-1a2b3c4d5e6f train-v1")
@handle_errors
def tag(
    ref: Annotated[str, typer.Argument(help="Version id, unique id prefix, or tag.")],
    name: Annotated[str, typer.Argument(help="Tag name, usable wherever a version id is.")],
    force: Annotated[bool, typer.Option("--force", help="Move the tag if it points elsewhere.")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a version a name that other commands accept in place of its id."""
    ws = open_workspace(workspace)
    v = ws.datasets.get(ref)
    previous = ws.datasets.tag(v.id, name, force=force)
    if as_json:
        emit_json({"ok": True, "version": v.id, "tag": name, "previous": previous})
    else:
        moved = f" (moved from {previous})" if previous and previous != v.id else ""
        out.print(f"tagged {v.id} as {escape(name)}{moved}")


@app.command("diff", epilog="Example: assay data diff train-v1 train-v2 --json")
@handle_errors
def diff(
    a: Annotated[str, typer.Argument(help="The older version (id, prefix or tag).")],
    b: Annotated[str, typer.Argument(help="The newer version (id, prefix or tag).")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which rows B added, removed or changed relative to A (rows are matched by id)."""
    from assay.store.diff import diff_versions

    ws = open_workspace(workspace)
    d = diff_versions(ws.datasets.get(a), ws.datasets.get(b))
    if as_json:
        emit_json({"ok": True, **d})
        return
    out.print(f"{d['a']} ({d['rows_a']:,} rows) → {d['b']} ({d['rows_b']:,} rows)")
    out.print(f"added {d['added']:,}  removed {d['removed']:,}  changed {d['changed']:,}  unchanged {d['unchanged']:,}")
    if d["columns_added"] or d["columns_removed"]:
        out.print(f"columns added: {d['columns_added']}  removed: {d['columns_removed']}")
    for kind in ("added", "removed"):
        if d["examples"][kind]:
            out.print(f"e.g. {kind}: {', '.join(d['examples'][kind])}")
    for ch in d["examples"]["changed"]:
        out.print(f"e.g. changed {ch['id']}: {', '.join(ch['columns'])}")
