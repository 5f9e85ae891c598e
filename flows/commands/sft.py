"""``mmupt model`` (create the tiny starting model) and ``mmupt sft`` (first SFT warm start)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flows.app import app
from schemas.base import load_config
from schemas.layout import model_in
from schemas.model import TinyModelConfig
from schemas.sft import SFTConfig

console = Console()


@app.command("model")
def model_command(
    world: Annotated[Path, typer.Option(help="World artifact directory (from `mmupt world`).")],
    out: Annotated[Path, typer.Option(help="Artifact directory; the checkpoint is its model/ subdirectory.")],
    config: Annotated[Path | None, typer.Option(help="YAML with TinyModelConfig fields.")] = None,
) -> None:
    """Create the tiny Qwen2.5-VL model with a tokenizer trained on the world's text.

    Example: mmupt model --world runs/world --out runs/tiny-model   (then --model runs/tiny-model/model)
    """
    from stages.bootstrap import bootstrap_tiny_model  # heavy (torch, transformers): import on use

    cfg = load_config(TinyModelConfig, config)
    bootstrap_tiny_model(world, cfg, out)
    console.print(f"tiny model saved to [bold]{model_in(out)}[/]")


@app.command("sft")
def sft_command(
    model: Annotated[Path, typer.Option(help="Starting checkpoint directory.")],
    world: Annotated[Path, typer.Option(help="World artifact directory with 'sft' and 'heldout' splits.")],
    out: Annotated[Path, typer.Option(help="Output artifact directory (model/ inside).")],
    config: Annotated[Path | None, typer.Option(help="YAML with SFTConfig fields.")] = None,
) -> None:
    """First SFT: supervised warm start, then greedy held-out accuracy.

    Example: mmupt sft --model runs/tiny-model --world runs/world --out runs/sft
    """
    from stages.sft import run_sft  # heavy (torch, transformers): import on use

    cfg = load_config(SFTConfig, config)
    result = run_sft(model, world, out, cfg)
    console.print(
        f"SFT: {result.steps} steps, loss {result.final_loss:.3f}, held-out accuracy "
        f"{result.accuracy_before:.1%} -> [bold]{result.accuracy_after:.1%}[/] ({result.seconds:.0f}s); "
        f"model at {result.model_dir}"
    )
