"""Can majority voting teach this model anything? Greedy vs per-sample vs majority-vote accuracy.

    .venv/bin/python benchmarks/vote_diagnostics.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --n 8 --temperature 0.6 1.0
    # any labelled dev set: a samples artifact from `mmupt ingest` (labels in oracle_answer) or Parquet
    .venv/bin/python benchmarks/vote_diagnostics.py --model CHECKPOINT --samples runs/dev-ingest --rows 500

MM-UPT's self-reward only helps where the majority answer of n samples is right more often than
the answer the model already gives (greedy), and where the prompts kept by ``min_vote_ratio`` carry
mostly right pseudo-labels. This measures both on labelled rows (the world's held-out split, or
any samples with ``oracle_answer``), per task and per vote-share bin, without training anything.
Run it on a labelled dev set before spending GPU hours on self-reward.

Columns: ``greedy`` (T=0), ``sample`` (mean accuracy of one sample at T), ``majority`` (the vote's
pseudo-label as training sees it: a tie gives none and counts as wrong), ``majority_tie_split``
(ties broken at random: 1/k when the gold answer is among k tied leaders), ``oracle_in_samples``
(pass@n: what supervised GRPO can reward), ``share`` (mean winner share).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from mmupt.answers import answers_equivalent, extract_answer
from mmupt.engine.base import GenerationRequest
from mmupt.engine.hf import HFEngine
from schemas.engine import SamplingParams
from schemas.vote import VoteConfig
from stages.sft import split_rows
from stages.train.data import load_prompts
from stages.vote import vote_group

SHARE_BINS = (0.0, 0.5, 0.625, 0.75, 0.875, 1.01)


def _correct(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_equivalent(answer, gold)


def mean(values: list) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _tie_split_credit(classes: dict[str, int], gold: str) -> float:
    """Expected accuracy of the majority answer when ties are broken at random (1/k if gold is among k)."""
    if not classes:
        return 0.0
    top = max(classes.values())
    leaders = [answer for answer, votes in classes.items() if votes == top]
    return sum(_correct(answer, gold) for answer in leaders) / len(leaders)


def diagnose(engine: HFEngine, rows: pa.Table, n: int, temperature: float, seed: int) -> dict:
    records = rows.select(["id", "problem", "images", "answer", "task"]).to_pylist()
    requests = [GenerationRequest(r["id"], r["problem"], r["images"]) for r in records]
    greedy = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=48))
    sampled = engine.generate(
        requests, SamplingParams(n=n, temperature=temperature, max_new_tokens=48, seed=seed)
    )
    per_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    bins: dict[str, list[bool]] = defaultdict(list)
    for record, first, samples in zip(records, greedy, sampled, strict=True):
        gold, task = record["answer"], record["task"]
        answers = [extract_answer(s.text) for s in samples]
        vote = vote_group(answers, VoteConfig(min_vote_ratio=0.0))
        stats = per_task[task]
        stats["greedy"].append(_correct(extract_answer(first[0].text), gold))
        stats["sample"].append(sum(_correct(a, gold) for a in answers) / n)
        majority_right = vote.pseudo_label is not None and _correct(vote.pseudo_label, gold)
        stats["majority"].append(majority_right)
        stats["majority_tie_split"].append(_tie_split_credit(vote.classes, gold))
        stats["oracle_in_samples"].append(any(_correct(a, gold) for a in answers))
        stats["share"].append(vote.vote_share)
        for low, high in itertools.pairwise(SHARE_BINS):
            if low <= vote.vote_share < high and vote.pseudo_label is not None:
                bins[f"[{low:.3g},{min(high, 1):.3g}{']' if high > 1 else ')'}"].append(majority_right)
    overall = defaultdict(list)
    for stats in per_task.values():
        for key, values in stats.items():
            overall[key].extend(values)
    return {
        "temperature": temperature,
        "n": n,
        "overall": {k: mean(v) for k, v in overall.items()},
        "by_task": {t: {k: mean(v) for k, v in s.items()} for t, s in sorted(per_task.items())},
        "precision_by_vote_share": {b: {"n": len(v), "precision": mean(v)} for b, v in sorted(bins.items())},
    }


def labelled_rows(world: Path | None, split: str, samples: Path | None, limit: int) -> pa.Table:
    """``id, problem, images, answer, task`` rows: a world split, or labelled samples (task "all")."""
    if world is not None:
        return split_rows(world, split).slice(0, limit)
    prompts = [p for p in load_prompts([samples]).original if p.oracle_answer is not None][:limit]
    if not prompts:
        raise SystemExit(f"{samples}: no row has an oracle_answer; the diagnostic needs labelled rows")
    return pa.table(
        {
            "id": [p.id for p in prompts],
            "problem": [p.problem for p in prompts],
            "images": [p.images for p in prompts],
            "answer": [p.oracle_answer for p in prompts],
            "task": ["all"] * len(prompts),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--world", type=Path, help="world artifact (with --split)")
    source.add_argument("--samples", type=Path, help="samples artifact or Parquet with oracle_answer")
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--temperature", type=float, nargs="+", default=[0.6, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = HFEngine.from_pretrained(args.model)
    rows = labelled_rows(args.world, args.split, args.samples, args.rows)
    for temperature in args.temperature:
        print(json.dumps(diagnose(engine, rows, args.n, temperature, args.seed), indent=1))


if __name__ == "__main__":
    main()
