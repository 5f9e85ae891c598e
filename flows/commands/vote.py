"""``mmupt vote``: majority-vote pseudo-labels and rewards for a rollouts file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.app import app
from schemas.base import load_config
from schemas.vote import VoteConfig
from stages.vote import run_vote

console = Console()


@app.command("vote")
def vote_command(
    rollouts: Annotated[
        Path, typer.Option(help="Rollouts (.parquet or .jsonl) with prompt_id, response[, response_index].")
    ],
    out: Annotated[Path, typer.Option(help="Output artifact directory (labels.parquet, rewards.parquet).")],
    config: Annotated[Path | None, typer.Option(help="YAML with VoteConfig fields.")] = None,
    min_vote_ratio: Annotated[
        float | None,
        typer.Option(help="Override min_vote_ratio: skip prompts whose winner share is below it."),
    ] = None,
    share_of: Annotated[
        str | None,
        typer.Option(help="Override share_of: the share's denominator, 'valid' answers or 'all' responses."),
    ] = None,
) -> None:
    """Vote each prompt's responses into a pseudo-label and per-response rewards.

    Example: mmupt vote --rollouts runs/rollouts.jsonl --out runs/vote --min-vote-ratio 0.6
    """
    overrides: dict[str, Any] = {}
    if min_vote_ratio is not None:
        overrides["min_vote_ratio"] = min_vote_ratio
    if share_of is not None:
        overrides["share_of"] = share_of
    cfg = load_config(VoteConfig, config, overrides)
    manifest = run_vote(rollouts, out, cfg)
    stats = manifest.stats
    summary = Table(title=f"vote -> {out}", show_header=False)
    summary.add_row("prompts", str(stats["n_prompts"]))
    summary.add_row("labelled", str(stats["n_labelled"]))
    skipped = ", ".join(f"{reason} {count}" for reason, count in stats["skipped"].items() if count) or "none"
    summary.add_row("skipped", f"{stats['n_skipped']} ({skipped})")
    summary.add_row("mean vote share", f"{stats['mean_vote_share']:.3f}")
    summary.add_row("unanimous share", f"{stats['unanimous_share']:.1%}")
    summary.add_row("valid answers", f"{stats['valid_share']:.1%}")
    summary.add_row("mean reward", f"{stats['mean_reward']:.3f}")
    console.print(summary)
