"""Scoring throughput: responses per second for typical model outputs, in-process and with workers.

    .venv/bin/python benchmarks/scoring_bench.py --n 5000 --workers 2 --write benchmarks/SCORING.md

Responses are synthetic but shaped like real ones: a few hundred words of reasoning with LaTeX,
then a final ``\\boxed{}`` (right about half the time, sometimes a fraction or a letter-with-text,
sometimes missing). Items are synthetic too (no data download needed), with the field shapes of
each benchmark. The worker pool is warmed up before timing (its one-off start-up cost is
reported separately).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.evaluate import ScoringConfig  # noqa: E402
from stages.evaluation.parallel import score_all, shutdown_workers  # noqa: E402
from stages.evaluation.registry import get_benchmark  # noqa: E402
from stages.evaluation.types import EvalItem  # noqa: E402

REASONING = (
    "Let me look at the figure carefully. The triangle has sides $a = 3$ and $b = 4$, and the angle "
    "between them is $90^\\circ$, so by the Pythagorean theorem $c = \\sqrt{a^2 + b^2} = \\sqrt{9 + 16} = 5$. "
    "The area is $\\frac{1}{2} \\cdot 3 \\cdot 4 = 6$. Next, the shaded region removes a quarter circle of "
    "radius 1, whose area is $\\frac{\\pi}{4} \\approx 0.785$. "
)


def _items(name: str, n: int, rng: random.Random) -> tuple[list[EvalItem], list[str]]:
    items, responses = [], []
    for i in range(n):
        kind = rng.random()
        if name == "mathvista":
            choices = ["135°", "140°", "145°", "150°"]
            if kind < 0.5:
                item = EvalItem(
                    str(i),
                    "q",
                    [],
                    "145°",
                    {},
                    {
                        "question_type": "multi_choice",
                        "answer_type": "text",
                        "choices": choices,
                        "precision": None,
                    },
                )
                final = rng.choice(["C", "(B)", "C. 145°", "145°", "150"])
            else:
                item = EvalItem(
                    str(i),
                    "q",
                    [],
                    "1.2",
                    {},
                    {"question_type": "free_form", "answer_type": "float", "choices": None, "precision": 1},
                )
                final = rng.choice(["1.2", "1.23", "\\frac{6}{5}", "1.3", "12 cm"])
        elif name == "mathvision":
            gold, options = (
                ("B", ["6", "8", "10", "11", "12"])
                if kind < 0.5
                else (rng.choice(["2.5", "\\frac{1}{3}", "(3,-4)"]), [])
            )
            item = EvalItem(
                str(i), "q", [], gold, {"level": 1 + i % 5, "subject": "algebra"}, {"options": options}
            )
            final = rng.choice(["B", "(B)", "8", "2.50", "0.33", "\\frac{5}{2}", "(3, -4)", "7"])
        elif name == "mathverse":
            gold = rng.choice(["4.4 m", "2\\sqrt{3}", "\\frac{\\pi}{4}", "60°"])
            item = EvalItem(
                str(i),
                "q",
                [],
                gold,
                {"problem_version": "Vision Only"},
                {"question_type": "free-form", "choices": {}, "gold_letters": None},
            )
            final = rng.choice(["4.4", "2\\sqrt{3}", "\\sqrt{12}", "0.785", "60", "x^2"])
        else:  # wemath
            item = EvalItem(str(i), "q", [], "B", {}, {"group": str(i // 3), "key": "2steps_1", "steps": 2})
            final = rng.choice(["B", "A", "B. 1.5 cm"])
        if rng.random() < 0.4:  # fresh numbers defeat the canonical-form caches, as real outputs do
            final = rng.choice(
                [
                    f"{rng.uniform(0, 100):.2f}",
                    f"\\frac{{{rng.randint(1, 99)}}}{{{rng.randint(2, 99)}}}",
                    f"{rng.randint(1, 9)}\\sqrt{{{rng.randint(2, 30)}}}",
                ]
            )
        body = REASONING * rng.randint(1, 4)
        response = body + (
            f"Therefore the answer is $\\boxed{{{final}}}$." if kind > 0.05 else "I am not sure."
        )
        items.append(item)
        responses.append(response)
    return items, responses


def measure(name: str, n: int, workers: int, seed: int = 0) -> dict[str, float]:
    items, responses = _items(name, n, random.Random(seed))
    score = get_benchmark(name).score
    inline = ScoringConfig(workers=0)
    score_all(score, items[:50], responses[:50], inline)  # warm caches and the symbolic-check worker
    count = min(n, 1000)
    started = time.perf_counter()
    score_all(score, items[:count], responses[:count], inline)
    inline_rate = count / (time.perf_counter() - started)
    started = time.perf_counter()
    score_all(score, items[:8], responses[:8], ScoringConfig(workers=workers))  # start and warm the workers
    startup = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = score_all(score, items, responses, ScoringConfig(workers=workers))
    seconds = time.perf_counter() - started
    assert len(verdicts) == n and not any((v.note or "").startswith("scorer_error") for v in verdicts)
    return {
        "inline": inline_rate,
        "pool": n / seconds,
        "startup": startup,
        "accuracy": sum(v.correct for v in verdicts) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--benchmarks", default="mathvista,mathvision,mathverse,wemath")
    parser.add_argument(
        "--write", type=Path, default=None, help="Markdown file to write the results table to."
    )
    args = parser.parse_args()
    lines = [
        "| benchmark | responses | in-process (resp/s) | "
        f"{args.workers} workers (resp/s) | worker start-up (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in args.benchmarks.split(","):
        result = measure(name, args.n, args.workers)
        lines.append(
            f"| {name} | {args.n} | {result['inline']:.0f} | {result['pool']:.0f} | {result['startup']:.1f} |"
        )
        print(lines[-1], flush=True)
    shutdown_workers()
    table = "\n".join(lines)
    print(table)
    if args.write:
        load = os.getloadavg()[0]
        header = (
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} ({os.cpu_count()} cores, load average "
            f"{load:.1f} at the end), {args.workers} worker(s), Python {platform.python_version()}, "
            f"`benchmarks/scoring_bench.py --n {args.n}`.\n\n"
        )
        args.write.write_text(header + table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
