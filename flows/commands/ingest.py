"""``mmupt ingest SOURCE... --out DIR``: bring a user dataset into the pipeline as ``samples``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.app import app
from mmupt.store import Manifest
from schemas.base import load_config
from schemas.ingest import LAYOUTS, IngestConfig
from stages.ingest import REASONS, run_ingest


def summary_tables(manifest: Manifest) -> list[Table]:
    """Per-source counts (with a total row), then reject reasons with what each means."""
    stats = manifest.stats
    counts = Table(title="ingest", show_footer=True)
    columns = ("read", "accepted", "rejected", "duplicates", "skipped_by_split")
    counts.add_column("source", footer="total")
    counts.add_column("layout")
    for name in columns:
        key = {"read": "rows_read", "accepted": "rows_accepted", "rejected": "rows_rejected"}.get(name, name)
        counts.add_column(name.replace("_", " "), justify="right", footer=str(stats[key]))
    for row in stats["sources"]:
        counts.add_row(row["source"], row["layout"], *(str(row[name]) for name in columns))
    tables = [counts]
    if stats["reject_reasons"]:
        reasons = Table(title="reject reasons")
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        reasons.add_column("meaning")
        for reason, count in stats["reject_reasons"].items():
            reasons.add_row(reason, str(count), REASONS.get(reason, ""))
        tables.append(reasons)
    return tables


@app.command("ingest")
def ingest(
    sources: Annotated[list[Path], typer.Argument(help="Dataset files or folders (layouts are detected).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Artifact folder to write: new, empty, or an earlier ingest artifact (replaced atomically).",
        ),
    ],
    layout: Annotated[
        str | None, typer.Option("--layout", help=f"Force a layout for every source: {', '.join(LAYOUTS)}.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="IngestConfig YAML file.")] = None,
    split: Annotated[
        list[str] | None,
        typer.Option("--split", help="Keep only this split (repeatable); overrides the config."),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Validate and normalise unlabeled images + questions into samples (labels go to oracle_answer)."""
    overrides: dict[str, Any] = {}
    if split:
        overrides["splits"] = split
    if not progress:
        overrides["progress"] = False
    settings = load_config(IngestConfig, config, overrides)
    manifest = run_ingest(sources, out, settings, layout)
    console = Console()
    for table in summary_tables(manifest):
        console.print(table)
    console.print(
        f"wrote {out} ({manifest.stats['rows_accepted']} samples, {manifest.stats['seconds']:.1f} s)"
    )
    if manifest.stats["rows_accepted"] == 0:
        console.print("[bold yellow]warning:[/] no row was accepted; the reasons are in rejects.parquet")
