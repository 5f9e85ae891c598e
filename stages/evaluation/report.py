"""Turn verdicts and metric rows into the artifact tables, ``scores.json``, markdown and MLflow names."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from schemas.artifacts import PREDICTIONS, REJECTS, SCORES
from stages.evaluation.types import EvalItem, MetricRow, Rejected, Verdict

_MLFLOW_UNSAFE_RE = re.compile(r"[^\w.\- /]")


def predictions_table(
    benchmark: str, items: Sequence[EvalItem], responses: Sequence[str], verdicts: Sequence[Verdict]
) -> pa.Table:
    return pa.table(
        {
            "id": [i.id for i in items],
            "benchmark": [benchmark] * len(items),
            "subset": [json.dumps(i.subset, ensure_ascii=False, sort_keys=True, default=str) for i in items],
            "response": list(responses),
            "extracted": [v.extracted for v in verdicts],
            "gold": [i.gold for i in items],
            "correct": [v.correct for v in verdicts],
            "note": [v.note for v in verdicts],
        },
        schema=PREDICTIONS,
    )


def scores_table(benchmark: str, rows: Sequence[MetricRow]) -> pa.Table:
    return pa.table(
        {
            "benchmark": [benchmark] * len(rows),
            "metric": [r.metric for r in rows],
            "subset": [r.subset for r in rows],
            "value": [float(r.value) for r in rows],
            "n": [int(r.n) for r in rows],
        },
        schema=SCORES,
    )


def rejects_table(rejects: Sequence[Rejected]) -> pa.Table:
    return pa.table(
        {
            "row": [r.row for r in rejects],
            "source": [r.source for r in rejects],
            "reason": [r.reason for r in rejects],
            "detail": [r.detail for r in rejects],
        },
        schema=REJECTS,
    )


def overall(rows: Sequence[MetricRow], primary_metric: str) -> MetricRow | None:
    return next((r for r in rows if r.metric == primary_metric and r.subset == "all"), None)


def scores_json(
    benchmark: str, primary_metric: str, rows: Sequence[MetricRow], stats: dict[str, Any]
) -> dict[str, Any]:
    """``{"benchmark", "primary_metric", "overall", "n", "metrics": {metric: {subset: {value, n}}}, "stats"}``."""
    metrics: dict[str, dict[str, dict[str, float | int]]] = {}
    for row in rows:
        metrics.setdefault(row.metric, {})[row.subset] = {"value": row.value, "n": row.n}
    head = overall(rows, primary_metric)
    return {
        "benchmark": benchmark,
        "primary_metric": primary_metric,
        "overall": head.value if head else None,
        "n": head.n if head else 0,
        "metrics": metrics,
        "stats": stats,
    }


def markdown_table(benchmark: str, rows: Sequence[MetricRow], max_rows: int = 40) -> str:
    """A short markdown table for reports: every "all" row first, then breakdowns up to ``max_rows``."""
    ordered = [r for r in rows if r.subset == "all"] + [r for r in rows if r.subset != "all"]
    lines = [f"**{benchmark}**", "", "| metric | subset | value | n |", "|---|---|---:|---:|"]
    for row in ordered[:max_rows]:
        subset = row.subset.replace("|", "\\|")
        lines.append(f"| {row.metric} | {subset} | {100 * row.value:.2f}% | {row.n} |")
    if len(ordered) > max_rows:
        lines.append(f"| ... | {len(ordered) - max_rows} more rows in scores.parquet | | |")
    return "\n".join(lines)


def mlflow_metrics(benchmark: str, rows: Sequence[MetricRow]) -> dict[str, float]:
    """``eval/<benchmark>/<metric>`` for overall rows, ``eval/<benchmark>/<metric>/<key>/<value>`` else.

    Characters MLflow refuses in metric names (``=``, ``,``, parentheses, ...) become ``_``.
    """
    out: dict[str, float] = {}
    for row in rows:
        name = f"eval/{benchmark}/{row.metric}"
        if row.subset != "all":
            name += "/" + row.subset.replace("=", "/").replace(",", "/")
        out[_MLFLOW_UNSAFE_RE.sub("_", name)] = float(row.value)
    return out
