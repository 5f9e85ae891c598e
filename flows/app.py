"""The typer application object that every ``flows/commands`` module registers on."""

import typer

app = typer.Typer(
    name="mmupt",
    help="Unsupervised post-training (MM-UPT) of multimodal LLMs. Every stage runs alone or in a round.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main_callback() -> None:
    """Unsupervised post-training (MM-UPT) of multimodal LLMs. Every stage runs alone or in a round."""
