"""Supervised GRPO vs majority-vote GRPO from the same SFT warm start, on the embedded world.

    .venv/bin/python benchmarks/grpo_gains.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --samples runs/demo/round-0/ingest --steps 20 --seed 0
    # REPORT.md study 2: a 6-epoch SFT, 1,000 held-out rows (a world with n_heldout 1000), 150 steps
    ... --model runs/sft6/model --world runs/world-heldout1000 --heldout 1000 --steps 150 --lr 1e-4 \
        --set data.epochs=10   # any TrainConfig field: --set key=value ...; --kinds oracle to skip one
    # REPORT.md study 3: the demo's warm start, 4,000 fresh prompts (world_unlabeled4000.yaml, ingested)
    ... --model runs/demo/round-0/sft/model --world runs/world-heldout1000 --heldout 1000 \
        --samples runs/ingest-u4000 --steps 250

Both runs use the same config (configs/train_tiny.yaml), seed, prompts and steps; only
``reward.kind`` differs (``oracle`` reads the hidden label, ``majority_vote`` does not). Held-out
accuracy is greedy on the world's held-out split, the same check as first SFT. Reports each gain
and the share of the supervised gain that self-reward recovers (the paper's comparison).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from mmupt.engine.hf import HFEngine
from schemas.base import load_config
from schemas.engine import SamplingParams
from schemas.train import TrainConfig
from stages.sft import split_rows
from stages.train import run_train
from stages.world_eval import labelled_accuracy

ROOT = Path(__file__).resolve().parents[1]


def heldout(model_dir: Path, world: Path, rows: int) -> float:
    engine = HFEngine.from_pretrained(model_dir)
    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=48)
    return labelled_accuracy(engine, split_rows(world, "heldout").slice(0, rows), sampling).accuracy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/grpo-gains"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--min-vote-ratio", type=float, default=0.75)
    parser.add_argument("--kinds", nargs="+", default=["oracle", "majority_vote"])
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra TrainConfig overrides (YAML values)"
    )
    args = parser.parse_args()
    extra = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}

    base = heldout(args.model, args.world, args.heldout)
    results = {
        "start": base,
        "steps": args.steps,
        "seed": args.seed,
        "temperature": args.temperature,
        "lr": args.lr,
    }
    results["overrides"] = extra
    for kind in args.kinds:
        config = load_config(
            TrainConfig,
            ROOT / "configs" / "train_tiny.yaml",
            {
                "reward.kind": kind,
                "data.max_steps": args.steps,
                "trainer.seed": args.seed,
                "rollout.temperature": args.temperature,
                "optim.lr": args.lr,
                "reward.vote.min_vote_ratio": args.min_vote_ratio,
                **extra,
            },
        )
        started = time.perf_counter()
        result = run_train([args.samples], args.model, args.out / kind, config)
        after = heldout(result.model_dir, args.world, args.heldout)
        last = [json.loads(x) for x in (args.out / kind / "metrics.jsonl").read_text().splitlines()][-3:]
        results[kind] = {
            "accuracy": after,
            "gain": after - base,
            "seconds": round(time.perf_counter() - started),
            "label_accuracy_last3": sum(m.get("label/accuracy", 0) for m in last) / len(last),
            "vote_share_last3": sum(m.get("vote/share_mean", 0) for m in last) / len(last),
            "skipped_share_last3": sum(m.get("vote/skipped_share", 0) for m in last) / len(last),
        }
    if "oracle" in results and "majority_vote" in results:
        sup, selfr = results["oracle"]["gain"], results["majority_vote"]["gain"]
        results["recovered_share"] = selfr / sup if sup > 0 else None
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
