"""The `assay` command line: a thin layer over the Python API (one module per command group).

Start-up imports only typer, rich and the command modules (which import the API inside each
command), so `assay --help` answers in well under a second.
"""

from __future__ import annotations

from typing import Annotated

import typer

from assay import __version__
from assay.cli import batch, common, curate, data, evaluate, label, models, train, workspace
from assay.cli.common import JsonOpt, WorkspaceOpt


def _hide_flag_types() -> None:
    """typer 0.29 prints `<bool>` after flags such as --json, which reads as if they took a value."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN202 (typer's signature)
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_hide_flag_types()

app = typer.Typer(
    name="assay",
    help="Curate, review, train and gate fine-tuning data and models. Every command takes --workspace and --json.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"assay {__version__}")
        raise typer.Exit()


@app.callback(epilog="Example: assay -w ./.assay curate run data/train.jsonl --name train-v1")
def root(
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    version: Annotated[bool, typer.Option("--version", help="Print assay's version and exit.", callback=_print_version, is_eager=True)] = False,
) -> None:
    """Curate, review, train and gate fine-tuning data and models.

    --workspace and --json may be given here, before the command, or after it.
    """
    common.GLOBAL.workspace, common.GLOBAL.as_json = workspace, as_json


workspace.register(app)
app.add_typer(curate.app, name="curate")
app.add_typer(data.app, name="data")
app.add_typer(label.app, name="label")
app.add_typer(train.app, name="train")
app.add_typer(models.app, name="models")
app.add_typer(evaluate.app, name="eval")
app.add_typer(batch.app, name="batch")


def main() -> None:
    app()
