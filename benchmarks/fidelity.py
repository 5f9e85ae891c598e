"""Scoring fidelity: re-score published model outputs and compare with the official verdicts.

    .venv/bin/python benchmarks/fidelity.py MathVista/results --benchmark mathvista
    .venv/bin/python benchmarks/fidelity.py MATH-V/outputs --benchmark mathvision --problems MATH-V/data/test.jsonl

Inputs are the benchmark authors' own result formats, as published next to their code:
- MathVista: ``**/output_*.json``, a JSON object ``pid -> record`` whose record holds the problem
  fields (``question``, ``answer``, ``question_type``, ``answer_type``, ``choices``,
  ``precision``), the model's ``response`` and the official verdict ``true_false``;
- MATH-V: ``**/*.jsonl``, one record per line with ``id``, the model's ``response`` and the
  official verdict ``correct``. The published files hold no problem fields: pass the dataset
  (``--problems MATH-V/data/test.jsonl``, or ``testmini.jsonl``) and records are joined by ``id``;
  a record that carries ``question``, ``options`` and ``answer`` itself needs no join.

Prints the agreement per file and in total, then the disagreements by cause: the rule that
extracted our answer (``prose_*`` for MathVista's prose rules, ``boxed/phrase`` for the shared
extractor, ``no_answer``...) and the direction (we say right where the official verdict says
wrong, or the reverse). No model and no GPU are needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.evaluation.loaders import mathvision as mathvision_loader  # noqa: E402
from stages.evaluation.loaders import mathvista as mathvista_loader  # noqa: E402
from stages.evaluation.loaders.common import RowProblem  # noqa: E402
from stages.evaluation.registry import get_benchmark  # noqa: E402
from stages.evaluation.types import EvalItem  # noqa: E402


@dataclass(frozen=True)
class Published:
    item: EvalItem
    response: str
    official: bool


@dataclass
class FileResult:
    path: Path
    agree: int = 0
    total: int = 0
    skipped: int = 0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def mathvista_records(path: Path, problems: dict[str, dict[str, Any]]) -> Iterator[Published | None]:
    del problems  # MathVista's published outputs carry their problem fields
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = data.values() if isinstance(data, dict) else data
    for row in rows:
        if not isinstance(row, dict) or "response" not in row or "true_false" not in row:
            yield None
            continue
        try:
            item = mathvista_loader.build(row, "", path).item
        except RowProblem:
            yield None
            continue
        yield Published(item.for_scoring(), str(row["response"] or ""), _truthy(row["true_false"]))


def mathvision_records(path: Path, problems: dict[str, dict[str, Any]]) -> Iterator[Published | None]:
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "response" not in row or "correct" not in row:
            yield None
            continue
        if "answer" not in row:
            problem = problems.get(str(row.get("id")))
            if problem is None:
                yield None  # not in the --problems file
                continue
            row = {**problem, **row}
        try:
            item = mathvision_loader.build(row, "", path).item
        except RowProblem:
            yield None
            continue
        yield Published(item.for_scoring(), str(row["response"] or ""), _truthy(row["correct"]))


FORMATS = {
    "mathvista": ("output_*.json", mathvista_records),
    "mathvision": ("*.jsonl", mathvision_records),
}


def read_problems(path: Path | None) -> dict[str, dict[str, Any]]:
    """``id -> row`` of a JSON Lines dataset file (MATH-V ``data/test.jsonl``); empty without one."""
    if path is None:
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {str(row["id"]): row for row in rows}


def measure(
    outputs: Path, benchmark: str, problems: Path | None = None
) -> tuple[list[FileResult], Counter[tuple[str, str]]]:
    pattern, reader = FORMATS[benchmark]
    by_id = read_problems(problems)
    scorer = get_benchmark(benchmark).score
    results: list[FileResult] = []
    causes: Counter[tuple[str, str]] = Counter()
    for path in sorted(outputs.rglob(pattern)):
        result = FileResult(path)
        for record in reader(path, by_id):
            if record is None:
                result.skipped += 1
                continue
            verdict = scorer(record.item, record.response)
            result.total += 1
            if verdict.correct == record.official:
                result.agree += 1
                continue
            direction = "ours right, official wrong" if verdict.correct else "ours wrong, official right"
            causes[(verdict.note or "boxed/phrase", direction)] += 1
        results.append(result)
    return results, causes


def report(results: list[FileResult], causes: Counter[tuple[str, str]]) -> str:
    lines = ["| file | verdicts | agreement | skipped |", "|---|---:|---:|---:|"]
    for result in results:
        share = result.agree / result.total if result.total else float("nan")
        lines.append(f"| {result.path.name} | {result.total} | {share:.4f} | {result.skipped} |")
    total = sum(r.total for r in results)
    agree = sum(r.agree for r in results)
    lines.append(
        f"| **all** | {total} | **{agree / total if total else float('nan'):.4f}** | "
        f"{sum(r.skipped for r in results)} |"
    )
    lines += ["", "| cause (our extraction) | direction | disagreements |", "|---|---|---:|"]
    for (cause, direction), count in causes.most_common():
        lines.append(f"| {cause} | {direction} | {count} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outputs", type=Path, help="folder of published outputs (searched recursively)")
    parser.add_argument("--benchmark", choices=sorted(FORMATS), required=True)
    parser.add_argument(
        "--problems", type=Path, help="MATH-V: the dataset's JSON Lines file to join the outputs with, by id"
    )
    args = parser.parse_args(argv)
    if not args.outputs.is_dir():
        parser.error(f"{args.outputs}: not a folder")
    if args.problems is not None and not args.problems.is_file():
        parser.error(f"{args.problems}: no such file")
    results, causes = measure(args.outputs, args.benchmark, args.problems)
    if not any(r.total for r in results):
        parser.error(f"{args.outputs}: no {FORMATS[args.benchmark][0]} file with scorable records")
    print(report(results, causes))


if __name__ == "__main__":
    main()
