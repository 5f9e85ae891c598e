"""``mmupt evaluate`` and ``mmupt score``: benchmark a model, or re-score saved responses.

``evaluate`` generates one answer per question with the shared reasoning prompt and scores it
with the benchmark's own rules; ``score`` does only the second half, from a JSONL/Parquet file
of ``id``/``response`` (e.g. another run's ``predictions.parquet``), with no model. Both write an
artifact (``predictions.parquet``, ``scores.parquet``, ``rejects.parquet``, ``scores.json``) and
print the overall score with its main breakdowns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from flows.app import app
from mmupt.store import Manifest, read_table
from schemas.base import load_config
from schemas.evaluate import EvalConfig

BENCHMARK_HELP = "Benchmark: mathvista, mathverse, mathvision, wemath, chartqa, iconqa, world, world-dev."


def _config(path: Path | None, limit: int | None, split: str | None) -> EvalConfig:
    overrides: dict[str, Any] = {}
    if limit is not None:
        overrides["limit"] = limit
    if split is not None:
        overrides["split"] = split
    return load_config(EvalConfig, path, overrides)


def _report(out: Path, manifest: Manifest) -> None:
    from stages.evaluation.report import markdown_table
    from stages.evaluation.types import MetricRow

    summary = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    rows = [
        MetricRow(r["metric"], r["subset"], r["value"], r["n"]) for r in read_table(out, "scores").to_pylist()
    ]
    console = Console()
    console.print(markdown_table(summary["benchmark"], rows, max_rows=20), highlight=False)
    stats = manifest.stats
    overall = summary["overall"]
    shown = f"{100 * overall:.2f}%" if overall is not None else "n/a"
    console.print(
        f"{summary['benchmark']} ({stats.get('split')}): {summary['primary_metric']} = {shown} over {summary['n']}; "
        f"scored {stats.get('n_scored')}, rejected {stats.get('n_rejected')}, notes {stats.get('notes')}",
        highlight=False,
    )
    unknown = stats.get("unknown_ids") or {}
    if unknown.get("count"):
        console.print(
            f"[yellow]{unknown['count']} response id(s) not in the data, not scored: {unknown['first']}[/]"
        )
    console.print(f"wrote {out} (predictions.parquet, scores.parquet, scores.json)", highlight=False)


@app.command("evaluate")
def evaluate_command(
    model: Path = typer.Option(..., "--model", help="Model directory (Hugging Face checkpoint)."),
    benchmark: str = typer.Option(..., "--benchmark", help=BENCHMARK_HELP),
    data: Path = typer.Option(
        ..., "--data", help="Benchmark data: a file, a repository folder or a Hub Parquet folder."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Artifact directory to write: new, empty, or an earlier artifact of this stage (replaced).",
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file with EvalConfig fields."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate only the first N items."),
    split: str | None = typer.Option(None, "--split", help="Benchmark split (default: the benchmark's own)."),
) -> None:
    """Generate one answer per question with MODEL and score it the benchmark's way."""
    from stages.evaluation.run import run_evaluate

    manifest = run_evaluate(model, benchmark, data, out, _config(config, limit, split))
    _report(out, manifest)


@app.command("score")
def score_command(
    benchmark: str = typer.Option(..., "--benchmark", help=BENCHMARK_HELP),
    data: Path = typer.Option(
        ..., "--data", help="Benchmark data: a file, a repository folder or a Hub Parquet folder."
    ),
    responses: Path = typer.Option(..., "--responses", help="JSONL/JSON/Parquet with 'id' and 'response'."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Artifact directory to write: new, empty, or an earlier artifact of this stage (replaced).",
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file with EvalConfig fields."),
    limit: int | None = typer.Option(None, "--limit", help="Consider only the first N items of the data."),
    split: str | None = typer.Option(None, "--split", help="Benchmark split (default: the benchmark's own)."),
) -> None:
    """Score saved responses against a benchmark, without a model."""
    from stages.evaluation.run import run_score

    manifest = run_score(benchmark, data, responses, out, _config(config, limit, split))
    _report(out, manifest)
