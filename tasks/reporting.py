"""Prefect artifacts: a markdown report per round (linking to its MLflow run), the campaign's table."""

from __future__ import annotations

import os

from schemas.campaign import CampaignConfig
from schemas.records import RoundRecord


def round_markdown(record: RoundRecord, config: CampaignConfig, mlflow_link: str | None) -> str:
    lines = [
        f"# {config.name}: round {record.round}",
        "",
        f"**Gate:** {record.outcome} — {record.decision}",
        "",
    ]
    if record.collapse:
        lines += [f"**Collapse:** {record.collapse}", ""]
    lines += ["| benchmark | score | delta vs champion |", "|---|---:|---:|"]
    gated = config.gate.benchmarks
    for name, value in sorted(record.scores.items()):
        delta = record.deltas.get(name)
        label = f"{name} (gated)" if gated is not None and name in gated else name
        lines.append(f"| {label} | {value:.3f} | {'' if delta is None else f'{delta:+.3f}'} |")
    if record.signals:
        lines += ["", "| self-reward signal | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in sorted(record.signals.items())]
    if mlflow_link:
        lines += ["", f"MLflow run: {mlflow_link}"]
    return "\n".join(lines)


TRAINING_VIEW = "workflowType=machine_learning"


def mlflow_run_link(ui: str, run_id: str | None) -> str:
    """The MLflow UI page of a run: MLflow 3 needs the experiment in the path (``#/experiments/<e>/runs/<r>``).

    ``workflowType=machine_learning`` opens it in the UI's "Model training" mode: a fresh browser
    otherwise starts in the GenAI mode (traces, sessions), whatever the experiment's kind tag says.
    """
    if not run_id:
        return "no MLflow run"
    if not ui.startswith("http"):
        return f"run id {run_id}"
    try:
        import mlflow

        experiment = mlflow.get_run(run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - a link is a convenience: never fail a round for it
        return f"run id {run_id} (MLflow at {ui})"
    return f"{ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}?{TRAINING_VIEW}"


def artifact_key(config: CampaignConfig, suffix: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return f"{config.name}-{suffix}".lower().replace("_", "-").replace(".", "-")


def publish_round_report(record: RoundRecord, config: CampaignConfig) -> None:
    from prefect.artifacts import create_markdown_artifact

    ui = os.environ.get("MLFLOW_UI_URL") or os.environ.get("MLFLOW_TRACKING_URI", "")
    link = mlflow_run_link(ui, record.mlflow_run_id)
    key = artifact_key(config, f"round-{record.round}")
    create_markdown_artifact(
        markdown=round_markdown(record, config, link),
        key=key,
        description=f"round {record.round} of campaign {config.name}",
    )


def publish_comparison(header: list[str], rows: list[list[str]], config: CampaignConfig) -> None:
    """The campaign's rounds side by side (the rows of ``mmupt compare``), one table artifact that
    every run of the campaign updates under the same key, so its latest version is the campaign's."""
    from prefect.artifacts import create_table_artifact

    create_table_artifact(
        table=[dict(zip(header, row, strict=True)) for row in rows],
        key=artifact_key(config, "comparison"),
        description=f"campaign {config.name}: every round so far, as `mmupt compare` shows it",
    )
