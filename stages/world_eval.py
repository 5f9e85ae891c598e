"""Accuracy on labelled questions with the shared answer rules: the embedded world's benchmark.

Used by the SFT warm start's held-out check and by evaluation (benchmark ``world``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from mmupt.answers import answers_equivalent, extract_answer
from mmupt.engine.base import Engine, GenerationRequest
from schemas.engine import SamplingParams


@dataclass
class AccuracyReport:
    accuracy: float
    n: int
    predictions: pa.Table  # schema PREDICTIONS
    by_task: dict[str, float]


def labelled_accuracy(
    engine: Engine, rows: pa.Table, sampling: SamplingParams, benchmark: str = "world"
) -> AccuracyReport:
    """Generate one answer per row and score it against ``answer`` (first completion of each)."""
    data = rows.select([c for c in ("id", "problem", "images", "answer", "task") if c in rows.column_names])
    records = data.to_pylist()
    requests = [GenerationRequest(r["id"], r["problem"], r["images"]) for r in records]
    completions = engine.generate(requests, sampling)
    out: dict[str, list] = {
        k: [] for k in ("id", "benchmark", "subset", "response", "extracted", "gold", "correct", "note")
    }
    per_task: dict[str, list[bool]] = {}
    for record, samples in zip(records, completions, strict=True):
        response = samples[0].text
        extracted = extract_answer(response)
        correct = extracted is not None and answers_equivalent(extracted, record["answer"])
        task = record.get("task") or "all"
        per_task.setdefault(task, []).append(correct)
        out["id"].append(record["id"])
        out["benchmark"].append(benchmark)
        out["subset"].append(json.dumps({"task": task}))
        out["response"].append(response)
        out["extracted"].append(extracted)
        out["gold"].append(record["answer"])
        out["correct"].append(correct)
        out["note"].append(None if extracted is not None else "no_answer")
    n = len(records)
    accuracy = sum(out["correct"]) / n if n else 0.0
    by_task = {task: sum(v) / len(v) for task, v in sorted(per_task.items())}
    return AccuracyReport(accuracy=accuracy, n=n, predictions=pa.table(out), by_task=by_task)
