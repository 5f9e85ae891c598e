"""``mmupt demo``: the embedded default, end to end on a CPU."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.app import app
from schemas.base import load_config
from schemas.demo import EmbeddedConfig
from stages.bootstrap import bootstrap_tiny_model
from stages.sft import run_sft
from stages.world import generate_world

console = Console()
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "embedded.yaml"


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Campaign directory for every artifact of the demo.")] = Path(
        "runs/demo"
    ),
    config: Annotated[Path | None, typer.Option(help="YAML with EmbeddedConfig sections.")] = None,
) -> None:
    """Run the embedded default for real: world -> tiny model -> first SFT -> held-out accuracy.

    Example: mmupt demo --out runs/demo
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = load_config(EmbeddedConfig, config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None))
    timings: dict[str, float] = {}

    def phase(name: str, fn, *args):
        started = time.perf_counter()
        console.rule(f"[bold]{name}")
        result = fn(*args)
        timings[name] = time.perf_counter() - started
        return result

    world_dir, base_dir, sft_dir = out / "world", out / "base-model", out / "sft"
    phase("world", generate_world, cfg.world, world_dir)
    phase("model", bootstrap_tiny_model, world_dir, cfg.model, base_dir)
    sft = phase("sft", run_sft, base_dir, world_dir, sft_dir, cfg.sft)

    table = Table(title="embedded default")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("held-out accuracy before SFT", f"{sft.accuracy_before:.1%}")
    table.add_row("held-out accuracy after SFT", f"{sft.accuracy_after:.1%}")
    for task, acc in sft.by_task.items():
        table.add_row(f"  {task}", f"{acc:.1%}")
    for name, seconds in timings.items():
        table.add_row(f"timing_s/{name}", f"{seconds:.1f}")
    console.print(table)
    console.print(f"warm-started model: [bold]{sft.model_dir}[/]")
