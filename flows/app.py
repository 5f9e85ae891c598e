"""The typer application object that every ``flows/commands`` module registers on."""

from typing import Annotated, Any

import typer
import yaml

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


SET_HELP = "Change one config key for this run: KEY=VALUE, dotted, VALUE read as YAML (repeatable), e.g. --set data.max_steps=12."


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``--set a.b=1`` options as load_config overrides; a malformed one is a usage error naming it."""
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(
                f"{item!r}: expected KEY=VALUE, e.g. data.max_steps=12", param_hint="--set"
            )
        try:
            overrides[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            overrides[key.strip()] = text
    return overrides
