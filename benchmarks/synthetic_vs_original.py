"""Majority-vote GRPO on synthetic-only questions vs on the original questions (MM-UPT Table 2, our scale).

    .venv/bin/python benchmarks/synthetic_vs_original.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --original runs/demo/round-0/ingest \
        --synthetic runs/demo/round-1/synthesize --steps 20

Same model, seed, config and steps; only the prompts differ. No labels are read by training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.grpo_gains import heldout
from schemas.base import load_config
from schemas.train import TrainConfig
from stages.train import run_train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("model", "world", "original", "synthetic"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic-vs-original"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--min-vote-ratio", type=float, default=0.6)
    args = parser.parse_args()
    overrides = {
        "data.max_steps": args.steps,
        "optim.lr": args.lr,
        "rollout.temperature": args.temperature,
        "reward.vote.min_vote_ratio": args.min_vote_ratio,
    }
    results = {"start": heldout(args.model, args.world, 200), **overrides}
    for name, samples in (("original", args.original), ("synthetic", args.synthetic)):
        config = load_config(TrainConfig, ROOT / "configs" / "train_tiny.yaml", overrides)
        result = run_train([samples], args.model, args.out / name, config)
        results[name] = heldout(result.model_dir, args.world, 200)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
