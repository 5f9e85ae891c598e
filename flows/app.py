"""The typer application object that every ``flows/commands`` module registers on."""

from typing import Annotated

import typer

import mmupt

app = typer.Typer(
    name="mmupt",
    help="Unsupervised post-training (MM-UPT) of multimodal LLMs. Every stage runs alone or in a round.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mmupt {mmupt.__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Unsupervised post-training (MM-UPT) of multimodal LLMs. Every stage runs alone or in a round.

    Example: mmupt demo --out runs/demo
    """
