"""Which questions to train on without labels (MM-UPT Table 2, our scale): original vs synthetic.

    .venv/bin/python benchmarks/synthetic_vs_original.py --model runs/study/continual/round-0/sft/model \
        --world runs/study/continual/round-0/world --samples runs/study/continual/round-0/ingest \
        --synthesize-from 640 --pool 320 --steps 20 --out runs/study/table2

The model first writes questions about the first ``--synthesize-from`` unlabeled images (the
campaign's synthesis settings, ``use_oracle_answer: false``: in-context answers are its own vote).
Then four pools of ``--pool`` prompts each, all without labels:

- ``original``: the unlabeled questions of those images;
- ``in-context``: questions written from image + question + the model's own answer;
- ``direct``: questions written from the image alone;
- ``mix``: originals and both kinds of synthetic questions, half and half.

Each pool trains the same start with the campaign's round (``configs/demo.yaml``'s ``train``: the
frozen round-level teacher's majority vote, 16 prompts x 8 responses per step, seed 0), the same
steps; then greedy accuracy on the held-out rows, paired against the start (McNemar).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.paired_heldout import by_task, correct_by_row
from mmupt.paired import paired
from mmupt.store import read_table, write_artifact
from schemas.base import load_config
from schemas.campaign import CampaignConfig
from stages.sft import split_rows
from stages.synthesis.mix import mix_samples
from stages.synthesis.run import run_synthesize
from stages.train import run_train

ROOT = Path(__file__).resolve().parents[1]
POOLS = ("original", "in-context", "direct", "mix")


def pools(originals: pa.Table, synthetic: pa.Table, size: int, seed: int) -> dict[str, pa.Table]:
    """The four training pools (SAMPLES rows), each at most ``size`` rows, seeded."""

    def first(table: pa.Table) -> pa.Table:
        order = list(range(table.num_rows))
        random.Random(f"table2|{seed}").shuffle(order)
        return table.take(pa.array(order[:size], pa.int64()))

    def only(strategy: str) -> pa.Table:
        chosen = synthetic.filter(pc.equal(synthetic["strategy"], strategy))
        return mix_samples(originals.slice(0, 0), chosen, 1.0, seed)

    return {
        "original": first(originals),
        "in-context": first(only("in-context")),
        "direct": first(only("direct")),
        "mix": first(mix_samples(originals, synthetic, 0.5, seed)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("model", "world", "samples"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/study/table2"))
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    parser.add_argument("--synthesize-from", type=int, default=640)
    parser.add_argument("--pool", type=int, default=320)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--pools", nargs="+", default=list(POOLS), choices=POOLS)
    args = parser.parse_args()
    campaign = load_config(CampaignConfig, args.config)
    assert campaign.synthesize is not None, f"{args.config} has no synthesize section"

    synth_dir = args.out / "synthesize"
    if not (synth_dir / "manifest.json").is_file():
        config = campaign.synthesize.model_copy(update={"max_samples": args.synthesize_from})
        run_synthesize(args.samples, args.model, synth_dir, config)
    originals = read_table(args.samples, "samples").slice(0, args.synthesize_from)
    synthetic = read_table(synth_dir, "synthetic")
    train_config = campaign.train.model_copy(
        update={
            "data": campaign.train.data.model_copy(update={"max_steps": args.steps}),
            "trainer": campaign.train.trainer.model_copy(update={"seed": args.seed}),
        }
    )

    rows = split_rows(args.world, "heldout").slice(0, args.heldout)
    start_report, start = correct_by_row(args.model, rows)
    results: dict[str, object] = {
        "rows": rows.num_rows,
        "steps": args.steps,
        "seed": args.seed,
        "synthetic_kept": {
            s: int(pc.sum(pc.equal(synthetic["strategy"], s)).as_py() or 0) for s in ("in-context", "direct")
        },
        "start": {"accuracy": start_report.accuracy, "by_task": by_task(start_report)},
    }
    for name, table in pools(originals, synthetic, args.pool, args.seed).items():
        if name not in args.pools:
            continue
        pool_dir = args.out / name / "samples"
        if not (pool_dir / "manifest.json").is_file():
            write_artifact(pool_dir, "mix", {"samples": table}, config={"pool": name, "seed": args.seed})
        started = time.perf_counter()
        trained = run_train([pool_dir], args.model, args.out / name / "train", train_config)
        report, after = correct_by_row(trained.model_dir, rows)
        result = paired(start, after)
        teacher = json.loads((args.out / name / "train" / "manifest.json").read_text())["stats"]
        results[name] = {
            "prompts": table.num_rows,
            "accuracy": report.accuracy,
            "gain_points": result.gain_points,
            "rows_fixed": result.fixed,
            "rows_broken": result.broken,
            "p_value": result.p_value,
            "by_task": by_task(report),
            "teacher": teacher.get("teacher_stats"),
            "seconds": round(time.perf_counter() - started),
        }
        print(json.dumps({name: results[name]}), flush=True)
    (args.out / "table2.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
