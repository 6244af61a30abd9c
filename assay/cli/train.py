"""`assay train run | resume`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from assay.cli.common import (
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    escape,
    handle_errors,
    open_workspace,
    out,
    settings,
)

app = typer.Typer(help="Train adapters on approved dataset versions.", no_args_is_help=True)

RUN_EXAMPLE = """Examples:

  assay train run --data train-approved --base ./SmolLM2-135M-Instruct.Q4_1.gguf

  assay train run --data ds-1a2b3c4d5e6f --base ./my-hf-model --config train.toml --json

Multi-GPU: accelerate launch -m assay.cli train run ... (no code change).
"""



def summary(model) -> dict:
    m = model.manifest
    return {"model": model.id, "status": model.status, "path": str(model.path), "base": m.get("base"),
            "data": m.get("data"), "losses": m.get("losses"), "counts": m.get("counts"),
            "unreviewed_datasets": m.get("unreviewed_datasets", [])}


@app.command("run", epilog=RUN_EXAMPLE)
@handle_errors
def run(
    data: Annotated[str, typer.Option("--data", "-d", help="Dataset version (id, prefix or tag); must be `approved`.")],
    base: Annotated[str | None, typer.Option("--base", "-b", help="Base model: local HF folder, .gguf file, or a cached hub id (default: train.base).")] = None,
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Tag the model version with this name (moves an existing tag).")] = None,
    allow_unreviewed: Annotated[bool, typer.Option("--allow-unreviewed", help="Train on a version that is not `approved` (recorded in the manifest).")] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train an adapter (LoRA by default) on an approved dataset version and register a model version.

    Settings come from the workspace's assay.toml ([train]), overlaid by --config FILE (same layout),
    then these options. A killed run resumes from its last checkpoint when the same command is run
    again (or with `assay train resume RUN`), ending with the same weights.
    """
    from assay.train import run_training

    ws = open_workspace(workspace)
    cfg = settings(ws, config, **{"train.base": base, "train.allow_unreviewed": allow_unreviewed or None}).train
    model_id = run_training(ws, data, base, cfg, name=name, progress=not as_json)
    show(ws.models.get(model_id), as_json)


@app.command("resume", epilog="Example: assay train resume 3f2a9c1b7d4e5f60")
@handle_errors
def resume(
    run_name: Annotated[str, typer.Argument(help="Run folder name under <workspace>/runs.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resume an interrupted training run from its latest checkpoint."""
    from assay.train.run import resume_training

    ws = open_workspace(workspace)
    show(ws.models.get(resume_training(ws, run_name, progress=not as_json)), as_json)


def show(model, as_json: bool) -> None:
    info = summary(model)
    if as_json:
        emit_json({"ok": True, **info})
        return
    out.print(f"model version [bold]{model.id}[/] ({model.status})")
    base = info["base"] or {}
    out.print(f"base: {escape(base.get('name') or base.get('spec'))} (sha256 {str(base.get('sha256'))[:12]})")
    out.print(f"data: {escape(', '.join(info['data'] or []))}")
    losses = {k: round(v, 4) for k, v in (info["losses"] or {}).items() if isinstance(v, float)}
    out.print(f"losses: {escape(json.dumps(losses))}  tokens seen: {(info['counts'] or {}).get('tokens_seen', 0):,}")
    if info["unreviewed_datasets"]:
        out.print(f"[yellow]trained on unreviewed data:[/] {', '.join(info['unreviewed_datasets'])}")
    out.print(f"files: {escape(model.path)}  (PeftModel.from_pretrained(base, this folder))")
