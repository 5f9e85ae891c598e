"""Supervised GRPO vs majority-vote GRPO from the same SFT warm start, on the embedded world.

    .venv/bin/python benchmarks/grpo_gains.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --samples runs/demo/round-0/ingest --steps 20 --seed 0
    # REPORT.md study 2: a 6-epoch SFT, 1,000 held-out rows (a world with n_heldout 1000), 150 steps
    ... --model runs/sft6/model --world runs/world-heldout1000 --heldout 1000 --steps 150 --lr 1e-4 \
        --set data.epochs=10   # any TrainConfig field: --set key=value ...; --kinds oracle to skip one
    # REPORT.md study 3: the demo's warm start, 4,000 fresh prompts (world_unlabeled4000.yaml, ingested)
    ... --model runs/demo/round-0/sft/model --world runs/world-heldout1000 --heldout 1000 \
        --samples runs/ingest-u4000 --steps 250

Every run uses the same config (configs/train_tiny.yaml), seed, prompts and steps; only the reward
differs: ``oracle`` (supervised: reads the hidden label), ``online`` (the reference majority vote
of each step's own responses) and ``frozen`` (the starting model's vote, taken once and held fixed:
``reward.teacher: frozen``). Neither self-reward variant reads a label. Held-out accuracy is greedy
on the world's held-out split, the same check as first SFT. Reports each gain and the share of the
supervised gain that each self-reward variant recovers (the paper's comparison).
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


VARIANTS: dict[str, dict[str, str]] = {
    "oracle": {"reward.kind": "oracle"},
    "online": {"reward.kind": "majority_vote", "reward.teacher": "online"},
    "frozen": {"reward.kind": "majority_vote", "reward.teacher": "frozen"},
}


def heldout(model_dir: Path, world: Path, rows: int, max_new_tokens: int = 64) -> float:
    engine = HFEngine.from_pretrained(model_dir)
    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
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
    parser.add_argument(
        "--variants", nargs="+", default=["oracle", "online", "frozen"], choices=sorted(VARIANTS)
    )
    parser.add_argument("--max-new-tokens", type=int, default=64, help="held-out check and rollouts")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra TrainConfig overrides (YAML values)"
    )
    args = parser.parse_args()
    extra = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}

    base = heldout(args.model, args.world, args.heldout, args.max_new_tokens)
    results = {
        "start": base,
        "steps": args.steps,
        "seed": args.seed,
        "temperature": args.temperature,
        "lr": args.lr,
    }
    results["overrides"] = extra
    for kind in args.variants:
        config = load_config(
            TrainConfig,
            ROOT / "configs" / "train_tiny.yaml",
            {
                **VARIANTS[kind],
                "rollout.max_response_length": args.max_new_tokens,
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
        after = heldout(result.model_dir, args.world, args.heldout, args.max_new_tokens)
        last = [json.loads(x) for x in (args.out / kind / "metrics.jsonl").read_text().splitlines()][-3:]
        results[kind] = {
            "accuracy": after,
            "gain": after - base,
            "seconds": round(time.perf_counter() - started),
            "label_accuracy_last3": sum(m.get("label/accuracy", 0) for m in last) / len(last),
            "vote_share_last3": sum(m.get("vote/share_mean", 0) for m in last) / len(last),
            "skipped_share_last3": sum(m.get("vote/skipped_share", 0) for m in last) / len(last),
        }
    if "oracle" in results:
        sup = results["oracle"]["gain"]
        for kind in ("online", "frozen"):
            if kind in results:
                results[kind]["recovered_share"] = results[kind]["gain"] / sup if sup > 0 else None
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
