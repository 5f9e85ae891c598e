"""``mmupt train``: GRPO with majority-vote self-reward (or the oracle), as a Ray + DeepSpeed job.

Per-step metrics go to ``<out>/metrics.jsonl`` and to MLflow (experiment ``mmupt-train``; a sqlite
store beside the job, ``<out>/../mlflow.db``, unless ``MLFLOW_TRACKING_URI`` is set). Not inside
``--out``: the job publishes its artifact over that whole directory, and a fresh run refuses one
that holds anything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.app import SET_HELP, app, parse_sets
from schemas import metrics
from schemas.base import load_config
from schemas.train import TrainConfig

console = Console()
EXPERIMENT = "mmupt-train"
PHASES = ("rollout", "vote", "adv", "logprob", "update", "checkpoint")


@app.command("train")
def train_command(
    samples: Annotated[
        list[Path],
        typer.Option(
            help="Samples artifact dir or Parquet (SAMPLES schema); a world artifact also works (its unlabeled "
            "split). Repeat to add synthetic samples."
        ),
    ],
    model: Annotated[Path, typer.Option(help="Starting checkpoint directory (HF, safetensors).")],
    out: Annotated[Path, typer.Option(help="Job directory, published as the train artifact at the end.")],
    config: Annotated[
        Path | None, typer.Option(help="YAML with TrainConfig fields (configs/train_*.yaml).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Train with GRPO on the model's own majority votes.

    Example: mmupt train --samples runs/world --model runs/sft/model --config configs/train_tiny.yaml --out runs/train --set data.max_steps=12
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mmupt import tracking
    from stages.train import run_train  # heavy (torch, ray, deepspeed): import on use

    cfg = load_config(TrainConfig, config, parse_sets(set_))
    tracking.use_campaign(out.resolve().parent, EXPERIMENT)
    tags = {"stage": "train", "resume": str(resume).lower(), "samples": ",".join(str(s) for s in samples)}
    with tracking.run("train", params=cfg.flat(), tags=tags):
        result = run_train(
            samples,
            model,
            out,
            cfg,
            on_metrics=tracking.log_step,
            resume=resume,
        )
        tracking.log_metrics(
            {"final/trained_steps": result.trained_steps, "final/skipped_steps": result.skipped_steps},
        )
    console.print(summary_table(result))


def summary_table(result) -> Table:  # noqa: ANN001 - TrainResult, imported lazily
    table = Table(title=f"train -> {result.out_dir}", show_header=False)
    table.add_row(
        "steps", f"{result.total_steps} (trained {result.trained_steps}, skipped {result.skipped_steps})"
    )
    if result.resumed_from:
        table.add_row("resumed from step", str(result.resumed_from))
    if result.metrics:
        first, last = result.metrics[0], result.metrics[-1]
        for key in metrics.TRAINING_SUMMARY:
            if key in last:
                table.add_row(key, f"{first.get(key, float('nan')):.3f} -> {last[key]:.3f}")
        steps = len(result.metrics)
        mean = {p: sum(m.get(metrics.timing_metric(p), 0.0) for m in result.metrics) / steps for p in PHASES}
        step_s = sum(m.get(metrics.timing_metric("step"), 0.0) for m in result.metrics) / steps
        split = ", ".join(f"{p} {mean[p]:.2f}" for p in PHASES if mean[p])
        table.add_row("seconds per step", f"{step_s:.2f} ({split})")
    table.add_row("model", str(result.model_dir))
    table.add_row("wall time", f"{result.seconds:.0f}s")
    return table
