"""``mmupt synthesize``: the model writes new questions about the samples' images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.app import app
from mmupt.store import Manifest
from schemas.base import load_config
from schemas.synthesize import SynthesizeConfig


def summary_tables(manifest: Manifest) -> list[Table]:
    """Survival by strategy (with the total), then drop reasons with what each means."""
    stats = manifest.stats
    survival = Table(title="synthesize", show_footer=True)
    survival.add_column("strategy", footer="total")
    survival.add_column("candidates", justify="right", footer=str(stats["candidates"]))
    survival.add_column("kept", justify="right", footer=str(stats["kept"]))
    survival.add_column("survival", justify="right", footer=f"{stats['survival_rate']:.1%}")
    for strategy, row in stats["by_strategy"].items():
        survival.add_row(strategy, str(row["candidates"]), str(row["kept"]), f"{row['survival_rate']:.1%}")
    from stages.synthesis.run import REASONS

    tables = [survival]
    drops = {**stats["drops"], **stats["parents_skipped"]}
    if drops:
        reasons = Table(title="dropped")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        reasons.add_column("meaning")
        for reason, count in drops.items():
            reasons.add_row(reason, str(count), REASONS.get(reason, ""))
        tables.append(reasons)
    return tables


@app.command("synthesize")
def synthesize(
    samples: Annotated[
        Path, typer.Option("--samples", help="Samples artifact folder (or SAMPLES Parquet file).")
    ],
    model: Annotated[
        Path, typer.Option("--model", help="Model checkpoint folder that writes the questions.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Artifact folder to write: new, empty, or an earlier synthesize artifact (replaced atomically).",
        ),
    ],
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", help="in-context | direct | both (overrides the config)."),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="SynthesizeConfig YAML file.")] = None,
) -> None:
    """Write new questions about the same images; keep those that pass the filters.

    Example: mmupt synthesize --samples runs/ingest --model runs/sft/model --strategy both --out runs/synth
    """
    overrides: dict[str, Any] = {}
    if strategy is not None:
        overrides["strategy"] = strategy
    settings = load_config(SynthesizeConfig, config, overrides)
    from stages.synthesis import run_synthesize  # heavy (torch, transformers): import on use

    manifest = run_synthesize(samples, model, out, settings)
    console = Console()
    for table in summary_tables(manifest):
        console.print(table)
    shards = manifest.stats["shards"]
    console.print(
        f"wrote {out} ({manifest.stats['kept']} questions; {shards['ran']} shard(s) run, "
        f"{shards['resumed']} resumed; {manifest.stats['seconds']:.1f} s)"
    )
