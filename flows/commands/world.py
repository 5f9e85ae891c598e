"""``mmupt world``: generate the embedded visual-math world as one artifact.

The world is the dataset that lets the whole loop run on a laptop; this command makes it without
writing any Python, and prints rows per split and task so a wrong config is visible at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from flows.app import app
from schemas.base import load_config
from schemas.world import WorldConfig
from stages.world import SPLITS, generate_world


@app.command("world")
def world_command(
    out: Path = typer.Option(
        ..., "--out", help="Artifact directory to write: new, empty, or an earlier world artifact (replaced)."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file with WorldConfig fields."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
) -> None:
    """Generate the seeded visual-math world (splits sft, heldout, unlabeled, dev)."""
    overrides: dict[str, Any] = {} if seed is None else {"seed": seed}
    cfg = load_config(WorldConfig, config, overrides)
    manifest = generate_world(cfg, out)
    Console().print(summary_table(manifest.stats, cfg))
    Console().print(f"wrote {manifest.rows('world')} rows to {out} (content {manifest.content_hash[:12]})")


def summary_table(stats: dict[str, Any], cfg: WorldConfig) -> Table:
    """Rows per task (lines) and split (columns), as recorded in the manifest stats."""
    table = Table(title=f"world  seed={cfg.seed}  difficulty={cfg.difficulty}  image={cfg.image_size}px")
    table.add_column("task")
    for split in SPLITS:
        table.add_column(split, justify="right")
    per_task: dict[str, dict[str, int]] = stats["tasks"]
    for task in cfg.tasks:
        table.add_row(task, *(str(per_task.get(split, {}).get(task, 0)) for split in SPLITS))
    table.add_row("[bold]all[/]", *(f"[bold]{stats['rows'][split]}[/]" for split in SPLITS))
    return table
