"""Which solution path does the model take, and how accurate is each? Greedy vs sampled, per task.

    .venv/bin/python benchmarks/path_diagnostics.py --model runs/demo/round-0/sft/model \
        --world runs/demo/round-0/world --rows 500 --n 8 --temperature 0.6

World v2 rationales open with their path ("By colour: ...", "Left to right: ..."), so the opening
words of a response name the decomposition it took. This prints, per task, greedy / one-sample /
majority (a tie counts as wrong) / tie-split majority / pass@n accuracy, then each opening's
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
from schemas.vote import VoteConfig
from stages.sft import split_rows
from stages.vote import vote_group


def correct(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_equivalent(answer, gold)


def opening(text: str, width: int = 24) -> str:
    """The response up to its first ':', ',' or '.': the path's name in world v2."""
    return re.split(r"[:,.]", text, maxsplit=1)[0][:width]


def mean(values: list[float]) -> float:
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
    per_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    paths: dict[tuple[str, str], list[bool]] = defaultdict(list)
    greedy_paths: Counter[tuple[str, str]] = Counter()
    agreement: dict[int, list[bool]] = defaultdict(list)
    for record, first, samples in zip(records, greedy, sampled, strict=True):
        gold, task = record["answer"], record["task"]
        answers = [extract_answer(s.text) for s in samples]
        vote = vote_group(answers, VoteConfig(min_vote_ratio=0.0))
        top = max(vote.classes.values()) if vote.classes else 0
        leaders = [a for a, c in vote.classes.items() if c == top]
        stats = per_task[task]
        stats["greedy"].append(correct(extract_answer(first[0].text), gold))
        stats["sample"].append(sum(correct(a, gold) for a in answers) / args.n)
        stats["majority"].append(vote.pseudo_label is not None and correct(vote.pseudo_label, gold))
        stats["tie_split"].append(sum(correct(a, gold) for a in leaders) / len(leaders) if leaders else 0.0)
        stats["pass_at_n"].append(any(correct(a, gold) for a in answers))
        for sample, answer in zip(samples, answers, strict=True):
            paths[(task, opening(sample.text))].append(correct(answer, gold))
        greedy_paths[(task, opening(first[0].text))] += 1
        if vote.pseudo_label is not None:
            agreement[round(vote.vote_share * args.n)].append(correct(vote.pseudo_label, gold))
    overall: dict[str, list[float]] = defaultdict(list)
    print(f"{args.model}: {len(records)} {args.split} rows, n {args.n}, T {args.temperature}")
    for task, stats in sorted(per_task.items()):
        print(f"  {task:8s}", {k: mean(v) for k, v in stats.items()})
        for key, values in stats.items():
            overall[key] += values
    print(f"  {'all':8s}", {k: mean(v) for k, v in overall.items()})
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
