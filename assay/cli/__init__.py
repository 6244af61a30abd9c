"""The `assay` command line: a thin layer over the Python API (one module per command group)."""

from __future__ import annotations

import typer

from assay.cli import curate, data, label, train, workspace

app = typer.Typer(
    name="assay",
    help="Curate, review, train and gate fine-tuning data and models. Every command takes --workspace and --json.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
workspace.register(app)
app.add_typer(curate.app, name="curate")
app.add_typer(data.app, name="data")
app.add_typer(label.app, name="label")
app.add_typer(train.app, name="train")
app.add_typer(train.models_app, name="models")


def main() -> None:
    app()
