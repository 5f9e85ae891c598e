"""The update's 'old' log-probs: recomputed by a forward pass, or recorded by the engine while sampling.

    .venv/bin/python benchmarks/logprob_reuse.py --model runs/demo/round-0/sft/model \
        --samples runs/demo/round-0/ingest --steps 6

Two training jobs from the same start, config (configs/train_tiny.yaml, one local rank), seed and
prompts; only ``algorithm.old_logprobs`` differs. Reports, per job, the mean seconds of the
log-probs phase and of the whole step (steps 2.., the first warms up), and how far the two jobs'
first steps drift apart (their rollouts are token-identical: same weights, same sampler draws).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from schemas.base import load_config
from schemas.metrics import KL, REWARD_MEAN, actor_metric, timing_metric
from schemas.train import TrainConfig
from stages.train import run_train

ROOT = Path(__file__).resolve().parents[1]


def job(model: Path, samples: Path, steps: int, mode: str, out: Path) -> list[dict[str, float]]:
    config = load_config(
        TrainConfig,
        ROOT / "configs" / "train_tiny.yaml",
        {
            "data.max_steps": steps,
            "trainer.launcher": "local",
            "trainer.num_workers": 1,
            "update.prompts_per_update": 8,
            "algorithm.old_logprobs": mode,
        },
    )
    return run_train([samples], model, out / mode, config).metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            mode: job(args.model, args.samples, args.steps, mode, Path(tmp))
            for mode in ("recompute", "rollout")
        }
    print("| old log-probs | log-probs phase s | step s | first-step kl | first-step reward |")
    print("|---|---:|---:|---:|---:|")
    for mode, metrics in runs.items():
        warm = metrics[1:] or metrics
        logprob = statistics.mean(m[timing_metric("logprob")] for m in warm)
        step = statistics.mean(m[timing_metric("step")] for m in warm)
        first = metrics[0]
        print(
            f"| {mode} | {logprob:.3f} | {step:.3f} | {first.get(KL, 0.0):.2e} | {first[REWARD_MEAN]:.3f} |"
        )
    a, b = runs["recompute"][0], runs["rollout"][0]
    loss_gap = abs(a.get(actor_metric("pg_loss"), 0.0) - b.get(actor_metric("pg_loss"), 0.0))
    print(f"\nfirst step: |pg_loss(recompute) - pg_loss(rollout)| = {loss_gap:.2e}")


if __name__ == "__main__":
    main()
