"""GRPO step time and peak memory per worker as n, prompts per step, response length and workers double.

    .venv/bin/python benchmarks/step_scaling.py --samples runs/demo/round-0/ingest \
        --model runs/demo/round-0/sft/model [--steps 4] [--write FILE]

Each setting is one real `mmupt train` job (configs/train_tiny.yaml, one worker in its own process:
`trainer.launcher: local`, so the process *is* the worker and its peak RSS is the worker's memory),
run one after another on the same machine. Step time is the median `timing_s/step` of the steps
after the first (the first pays for warm-up); memory is the process's peak resident set. The
last setting runs the shipped launcher (Ray Train, 2 workers, ZeRO-2) on the same 16 prompts: the
rollouts' (and the step's) scaling from 1 to 2 workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_job import read_step_metrics, train_command  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

PEAK_OF_CHILD = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)

SETTINGS: dict[str, dict[str, str]] = {
    "base (n 8, 16 prompts, 64 tokens)": {},
    "n x2 (16 responses per prompt)": {"rollout.n": "16"},
    "prompts x2 (32 per step)": {"data.prompts_per_step": "32", "update.prompts_per_update": "16"},
    "response length x2 (128 tokens max)": {"rollout.max_response_length": "128"},
    # Rollouts run inside the training workers, each on its share of the prompts: 1 vs 2 workers
    # is the job's own scaling (Ray Train + ZeRO-2; its peak is the largest process, i.e. a worker).
    "workers x2 (2 Ray workers, 8 prompts each)": {"trainer.launcher": "ray", "trainer.num_workers": "2"},
}


def run_setting(samples: Path, model: Path, steps: int, overrides: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train"
        sets = {
            "data.max_steps": str(steps),
            "trainer.launcher": "local",
            "trainer.num_workers": "1",
            "trainer.checkpoint_every": "1000",
            **overrides,
        }
        command = train_command(samples, model, out, sets)
        # A fresh parent per setting: RUSAGE_CHILDREN's peak is then this job's alone.
        done = subprocess.run(
            [sys.executable, "-c", PEAK_OF_CHILD, *command],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        peak_kb = int(done.stdout.strip().splitlines()[-1])
        lines = read_step_metrics(out)
    warm = lines[1:] or lines
    tokens = [line.get("response/length_mean", 0.0) for line in lines]
    responses = int(overrides.get("data.prompts_per_step", 16)) * int(overrides.get("rollout.n", 8))
    return {
        "step_s": statistics.median(line["timing_s/step"] for line in warm),
        "rollout_s": statistics.median(line["timing_s/rollout"] for line in warm),
        "rollout_tokens_s": statistics.median(
            responses * line.get("response/length_mean", 0.0) / line["timing_s/rollout"] for line in warm
        ),
        "peak_mb": peak_kb / 1024,
        "response_tokens": statistics.mean(tokens),
    }


def memory(name: str, row: dict[str, float]) -> str:
    """A local worker's peak; not for Ray rows (the workers are the raylet's children, not the job's)."""
    return "-" if "Ray" in name else f"{row['peak_mb']:.0f}"


def report(rows: dict[str, dict[str, float]], steps: int) -> str:
    base = next(iter(rows.values()))
    lines = [
        f"Measured {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{steps} steps per setting, one worker (`trainer.launcher: local`) unless the row says otherwise. "
        "Rollout tokens/s: every response token of the step over the rollout phase (the slowest rank's).",
        "",
        "| setting | step (s) | vs base | rollout (s) | rollout tokens/s | peak memory per worker (MB) "
        "| mean response tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['step_s']:.2f} | {row['step_s'] / base['step_s']:.2f}x | {row['rollout_s']:.2f} | "
            f"{row['rollout_tokens_s']:.0f} | {memory(name, row)} | {row['response_tokens']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=Path, required=True, help="an ingest artifact (unlabeled prompts)")
    parser.add_argument("--model", type=Path, required=True, help="the SFT model directory")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--write", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    rows = {}
    for name, overrides in SETTINGS.items():
        rows[name] = run_setting(args.samples.resolve(), args.model.resolve(), args.steps, overrides)
        print(name, rows[name], flush=True)
    table = report(rows, args.steps)
    print(table)
    if args.write:
        args.write.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
