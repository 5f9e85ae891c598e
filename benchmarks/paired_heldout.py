"""Paired held-out comparison of checkpoints against a starting model (same rows, same greedy rule).

    .venv/bin/python benchmarks/paired_heldout.py --world runs/world-heldout1000 --rows 1000 \
        --start runs/sft6/model --models runs/gg/oracle/model runs/gg/majority_vote/model

A gain of 2 points on 1,000 rows is within the binomial noise of either accuracy (std ~1.5 points),
but both models answer the same rows, so what matters is how many rows flipped each way. Reports
the flips and McNemar's exact two-sided p-value (``mmupt.paired``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmupt.engine.hf import HFEngine
from mmupt.paired import paired
from schemas.engine import SamplingParams
from stages.sft import split_rows
from stages.world_eval import AccuracyReport, labelled_accuracy


def correct_by_row(model: Path, rows, max_new_tokens: int = 64) -> tuple[AccuracyReport, dict[str, bool]]:
    report = labelled_accuracy(
        HFEngine.from_pretrained(model),
        rows,
        SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens),
    )
    table = report.predictions
    return report, dict(zip(table["id"].to_pylist(), table["correct"].to_pylist(), strict=True))


def by_task(report: AccuracyReport) -> dict[str, float]:
    return {task: round(accuracy, 3) for task, accuracy in report.by_task.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--start", type=Path, required=True)
    parser.add_argument("--models", type=Path, nargs="+", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    rows = split_rows(args.world, "heldout").slice(0, args.rows)
    base_report, base = correct_by_row(args.start, rows, args.max_new_tokens)
    base_accuracy = base_report.accuracy
    results = {
        "rows": rows.num_rows,
        "start": {"model": str(args.start), "accuracy": base_accuracy, "by_task": by_task(base_report)},
    }
    for model in args.models:
        report, after = correct_by_row(model, rows, args.max_new_tokens)
        result = paired(base, after)
        results[str(model)] = {
            "accuracy": report.accuracy,
            "gain_points": result.gain_points,
            "rows_fixed": result.fixed,
            "rows_broken": result.broken,
            "mcnemar_p": float(f"{result.p_value:.2g}"),
            "by_task": by_task(report),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
