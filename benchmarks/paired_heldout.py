"""Paired held-out comparison of checkpoints against a starting model (same rows, same greedy rule).

    .venv/bin/python benchmarks/paired_heldout.py --world runs/world-heldout1000 --rows 1000 \
        --start runs/sft6/model --models runs/gg/oracle/model runs/gg/majority_vote/model

A gain of 2 points on 1,000 rows is within the binomial noise of either accuracy (std ~1.5 points),
but both models answer the same rows, so what matters is how many rows flipped each way. Reports
the flips and McNemar's exact two-sided p-value (scipy's binomial test over the discordant rows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import binomtest

from mmupt.engine.hf import HFEngine
from schemas.engine import SamplingParams
from stages.sft import split_rows
from stages.world_eval import AccuracyReport, labelled_accuracy


def correct_by_row(model: Path, rows) -> tuple[AccuracyReport, dict[str, bool]]:
    report = labelled_accuracy(
        HFEngine.from_pretrained(model), rows, SamplingParams(n=1, temperature=0.0, max_new_tokens=48)
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
    args = parser.parse_args()
    rows = split_rows(args.world, "heldout").slice(0, args.rows)
    base_report, base = correct_by_row(args.start, rows)
    base_accuracy = base_report.accuracy
    results = {
        "rows": rows.num_rows,
        "start": {"model": str(args.start), "accuracy": base_accuracy, "by_task": by_task(base_report)},
    }
    for model in args.models:
        report, after = correct_by_row(model, rows)
        accuracy = report.accuracy
        gained = sum(after[i] and not base[i] for i in base)
        lost = sum(base[i] and not after[i] for i in base)
        p = binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
        results[str(model)] = {
            "accuracy": accuracy,
            "gain_points": round(100 * (accuracy - base_accuracy), 1),
            "rows_fixed": gained,
            "rows_broken": lost,
            "mcnemar_p": float(f"{p:.2g}"),
            "by_task": by_task(report),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
