"""Which solution path does the model take, and how accurate is each? Greedy vs sampled, per task.

    .venv/bin/python benchmarks/path_diagnostics.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --rows 500 --n 8 --temperature 0.6

World v2 rationales open with their path ("By colour: ...", "Left to right: ..."), so the opening
words of a response name the decomposition it took. This prints, per task, the premise stage's
figures (greedy, one sample, majority with ties wrong, tie split, pass@n), then each opening's
sampled accuracy next to how many greedy answers took it, and the majority's precision by how many
of the n samples agreed. It is how the REPORT explains where the vote's edge over greedy comes
from (greedy committing to one path) and what self-reward changes (the share of each path).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

from mmupt.answers import answers_equivalent, extract_answer
from mmupt.engine.base import GenerationRequest
from mmupt.engine.hf import HFEngine
from schemas.engine import SamplingParams
from stages.premise import score_row, summarise
from stages.sft import split_rows


def correct(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_equivalent(answer, gold)


def opening(text: str, width: int = 24) -> str:
    """The response up to its first ':', ',' or '.': the path's name in world v2."""
    return re.split(r"[:,.]", text, maxsplit=1)[0][:width]


def mean(values: list[bool]) -> float:
    return round(sum(values) / len(values), 3) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    engine = HFEngine.from_pretrained(args.model)
    rows = split_rows(args.world, args.split).slice(0, args.rows)
    records = rows.select(["id", "problem", "images", "answer", "task"]).to_pylist()
    requests = [GenerationRequest(r["id"], r["problem"], r["images"]) for r in records]
    greedy = engine.generate(
        requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens)
    )
    sampled = engine.generate(
        requests,
        SamplingParams(
            n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens, seed=args.seed
        ),
    )
    outcomes = []
    paths: dict[tuple[str, str], list[bool]] = defaultdict(list)
    greedy_paths: Counter[tuple[str, str]] = Counter()
    agreement: dict[int, list[bool]] = defaultdict(list)
    for record, first, samples in zip(records, greedy, sampled, strict=True):
        gold, task = record["answer"], record["task"]
        texts = [s.text for s in samples]
        outcome = score_row(task, gold, first[0].text, texts)  # the premise stage's own scoring
        outcomes.append(outcome)
        for text in texts:
            paths[(task, opening(text))].append(correct(extract_answer(text), gold))
        greedy_paths[(task, opening(first[0].text))] += 1
        if outcome.labelled:
            agreement[round(outcome.winner_share * args.n)].append(outcome.majority)
    result = summarise(outcomes)
    print(f"{args.model}: {len(records)} {args.split} rows, n {args.n}, T {args.temperature}")
    for task, figures in [*result.by_task.items(), ("all", result.overall)]:
        print(f"  {task:8s}", figures)
    print("paths (sampled responses >= 10): accuracy, and how many greedy answers took the path")
    for (task, name), hits in sorted(paths.items()):
        if len(hits) >= 10:
            print(
                f"  {task:8s} {name:26s} {len(hits):5d} samples  acc {mean(hits):.3f}  greedy {greedy_paths[(task, name)]}"
            )
    print("majority precision by agreeing votes")
    for votes in sorted(agreement):
        print(f"  {votes}/{args.n}: {len(agreement[votes])} prompts, precision {mean(agreement[votes]):.3f}")


if __name__ == "__main__":
    main()
