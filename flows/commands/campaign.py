"""``mmupt campaign``, ``mmupt round``, ``mmupt compare`` and ``mmupt demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.app import SET_HELP, app, parse_sets
from flows.preflight import preflight
from flows.runtime import check_prefect_server, configure, quiet_user_error_tracebacks
from mmupt.errors import PremiseFailedError
from schemas.base import load_config
from schemas.campaign import CampaignConfig
from schemas.layout import CampaignLayout
from schemas.records import RoundRecord
from stages.compare import compare_campaign, comparison_rows, plot_comparison
from tasks.reporting import TRAINING_VIEW

console = Console()
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEMO_CONFIG = CONFIGS / "demo.yaml"


def print_comparison(campaign_dir: Path) -> Path:
    comparison = compare_campaign(campaign_dir)
    header, rows = comparison_rows(comparison)
    table = Table(title=f"rounds of {campaign_dir}")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    png = plot_comparison(comparison, CampaignLayout(campaign_dir).comparison_png)
    console.print(f"plot: {png}")
    return png


def premise_line(premise: dict | None, when: str = "premise") -> str:
    """A premise check in one line (majority@n vs greedy on the dev rows)."""
    if premise is None:
        return f"{when}: not measured (no labelled dev set)"
    if premise.get("verdict"):
        return f"{when}: [bold yellow]fails[/] — {premise['summary']}"
    return f"{when}: holds — {premise['summary']}"


def where_to_look(campaign_dir: Path, summary: dict) -> None:
    console.print(premise_line(summary.get("premise")), highlight=False)
    for record in map(RoundRecord.model_validate, summary["rounds"]):  # later rounds' re-checks
        if not record.is_baseline and record.premise:
            line = premise_line(record.premise, f"premise before round {record.round}")
            console.print(line, highlight=False)
    console.print(f"stop: {summary['stop_reason']}")
    console.print(f"champion model: [bold]{summary['champion']}[/]")
    uri = summary["tracking_uri"]
    # commands and URLs are printed whole (soft wrap): a line broken mid-path cannot be pasted
    if uri.startswith("sqlite"):
        command = f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
        page = f"http://127.0.0.1:5000/#/experiments?{TRAINING_VIEW}"
        console.print(f"MLflow UI:  {command}   (then {page})", soft_wrap=True, highlight=False)
    else:
        console.print(f"MLflow UI:  {uri}", soft_wrap=True, highlight=False)
    console.print(f"Prefect UI: {prefect_ui_hint()}", soft_wrap=True, highlight=False)


def prefect_ui_hint() -> str:
    """Where this run's Prefect UI is: the configured server, or how to start a local one."""
    api = os.environ.get("PREFECT_API_URL")
    if api:
        return api.rstrip("/").removesuffix("/api")
    return "bash deploy/start_prefect.sh   (then http://127.0.0.1:4200)"


def run_campaign(config: CampaignConfig, out: Path) -> dict:
    preflight(config, out)  # before any server starts: a wrong path or busy directory is one line
    configure()
    check_prefect_server()
    from flows.campaign import campaign_flow

    quiet_user_error_tracebacks()  # after Prefect set up its logging

    try:
        summary = campaign_flow(config, out)
    except PremiseFailedError:
        # Round 0 is complete (baseline + premise figures): show it before the one-line error.
        console.rule("[bold]round 0")
        print_comparison(out.resolve())
        raise
    console.rule("[bold]comparison")
    print_comparison(out.resolve())
    where_to_look(out, summary)
    return summary


@app.command("campaign")
def campaign_command(
    config: Annotated[Path, typer.Option(help="Campaign YAML (CampaignConfig).")],
    out: Annotated[Path, typer.Option(help="Campaign directory (artifacts, MLflow store).")],
    rounds: Annotated[int | None, typer.Option(help="Override the number of rounds.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Run a continual campaign through Prefect: round 0 baseline, then UPT rounds with gating.

    Example: mmupt campaign --config configs/demo.yaml --out runs/campaign --set train.data.max_steps=12
    """
    overrides = {**parse_sets(set_), **({"rounds": rounds} if rounds else {})}
    run_campaign(load_config(CampaignConfig, config, overrides), out)


@app.command("round")
def round_command(
    config: Annotated[Path, typer.Option(help="Campaign YAML (CampaignConfig).")],
    out: Annotated[Path, typer.Option(help="Campaign directory with a finished round 0.")],
    round_index: Annotated[
        int | None,
        typer.Option("--round", help="Round k >= 1 to (re)run; default: the campaign's next round."),
    ] = None,
) -> None:
    """Run the next round of an existing campaign (or re-run round k) from the champion before it.

    Finished stages are cached; the campaign's summary and MLflow run are updated with the round.
    Example: mmupt round --config configs/demo.yaml --out runs/campaign
    """
    campaign_config = load_config(CampaignConfig, config)
    preflight(campaign_config, out)
    configure()
    from flows.campaign import continue_campaign

    quiet_user_error_tracebacks()

    record = continue_campaign(campaign_config, out, round_index)
    console.print(f"round {record.round}: {record.outcome} — {record.decision}")


@app.command("compare")
def compare_command(
    campaign: Annotated[Path, typer.Option(help="Campaign directory.")],
) -> None:
    """Compare all rounds of a campaign (DuckDB over its Parquet artifacts) and write comparison.png.

    Example: mmupt compare --campaign runs/demo
    """
    print_comparison(campaign)


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Campaign directory for the demo.")] = Path("runs/demo"),
    rounds: Annotated[int | None, typer.Option(help="UPT rounds after the baseline.")] = None,
    config: Annotated[Path | None, typer.Option(help="Campaign YAML; default configs/demo.yaml.")] = None,
) -> None:
    """The embedded default end to end: world -> tiny model -> first SFT -> UPT rounds, via Prefect + MLflow.

    Example: mmupt demo --out runs/demo --rounds 2
    """
    overrides = {"rounds": rounds} if rounds else None
    run_campaign(load_config(CampaignConfig, config or DEMO_CONFIG, overrides), out)
