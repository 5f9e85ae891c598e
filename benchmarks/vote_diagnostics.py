"""Can majority voting teach this model anything? Greedy vs per-sample vs majority-vote accuracy.

    .venv/bin/python benchmarks/vote_diagnostics.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --split dev --n 8 --temperature 0.6 1.0
    # any labelled dev set: a samples artifact from `mmupt ingest` (labels in oracle_answer) or Parquet
    .venv/bin/python benchmarks/vote_diagnostics.py --model CHECKPOINT --samples runs/dev-ingest --rows 500

MM-UPT's self-reward only helps where the majority answer of n samples is right more often than
the answer the model already gives (greedy), and where the prompts kept by ``min_vote_ratio`` carry
mostly right pseudo-labels. This measures both on labelled rows (a world split, or any samples with
``oracle_answer``), per task and per vote-share bin, without training anything. It is the premise
check of ``stages/premise.py`` (which a campaign runs in round 0), swept over temperatures.

Figures (``schemas/premise.py``): ``greedy`` (T=0), ``sample`` (mean accuracy of one sample at T),
``majority`` (the vote's pseudo-label as training sees it: a tie gives none and counts as wrong),
``majority_tie_split`` (ties broken at random: 1/k when the gold answer is among k tied leaders),
``pass_at_n`` (what supervised GRPO can reward), ``winner_share`` (mean winner share), ``gain``
(majority - greedy); per vote-share bin, the pseudo-labels' precision next to greedy accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmupt.engine.base import Engine
from schemas.premise import PremiseConfig, column
from stages.premise import labelled_rows, measure


def diagnose(engine: Engine, rows: Any, config: PremiseConfig) -> dict[str, Any]:
    """The premise figures of ``engine`` on ``rows`` at ``config.temperature``, as one JSON-ready dict."""
    result, generation = measure(engine, rows, config)
    return {
        "temperature": config.temperature,
        "n": config.n,
        "overall": {column(k): v for k, v in result.overall.items()},
        "by_task": {t: {column(k): v for k, v in f.items()} for t, f in result.by_task.items()},
        "precision_by_vote_share": {
            b["bin"]: {"n": b["prompts"], "precision": b["precision"], "greedy": b["greedy"]}
            for b in result.bins
        },
        **generation,
    }


def main() -> None:
    from mmupt.engine.hf import HFEngine

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", type=Path, help="world artifact (with --split)")
    source.add_argument("--samples", type=Path, help="samples artifact or Parquet with oracle_answer")
    parser.add_argument("--split", default="heldout", help="world split (the campaign's check uses dev)")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--temperature", type=float, nargs="+", default=[0.6, 1.0])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = HFEngine.from_pretrained(args.model)
    rows = labelled_rows(args.world or args.samples, args.split, args.rows).table
    for temperature in args.temperature:
        config = PremiseConfig(
            n=args.n,
            temperature=temperature,
            max_new_tokens=args.max_new_tokens,
            rows=args.rows,
            split=args.split,
            seed=args.seed,
        )
        print(json.dumps(diagnose(engine, rows, config), indent=1))


if __name__ == "__main__":
    main()
