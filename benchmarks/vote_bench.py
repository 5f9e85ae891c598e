"""Self-reward throughput: ``mmupt vote`` against the reference approach, side by side in one run.

    make bench       # installs mathruler (the reference's grader) into .bench/packages; this part alone:
    PYTHONPATH=.bench/packages .venv/bin/python benchmarks/vote_bench.py --steps 4 --repeats 3

The load (``benchmarks/vote_load.py``): 4 steps of the 7B recipe's rollout batch, 512 prompts x
n = 10 = 20,480 responses. The reference approach is what the MM-UPT release does per prompt:
mathruler's ``extract_boxed_content``, a ``Counter`` over the strings, then
``grade_answer(answer, majority)`` per response. Both run as whole processes on the same JSONL
file (interpreter start and imports included), alternating, best of ``--repeats``; then the
in-process vote of one step (5,120 responses) is timed with a warm symbolic worker. A label is
right when math-verify (not either contestant's rules) says it equals the prompt's true answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.vote_load import make_hostile_load, make_vote_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def reference_vote(rollouts: Path, out: Path) -> None:
    """The reference approach, run in its own process by the benchmark."""
    from mathruler.grader import extract_boxed_content, grade_answer

    groups: dict[str, list[str]] = {}
    for line in rollouts.open(encoding="utf-8"):
        row = json.loads(line)
        groups.setdefault(row["prompt_id"], []).append(row["response"])
    labels = {}
    for prompt_id, responses in groups.items():
        answers = [extract_boxed_content(text) for text in responses]
        counts = Counter(answer for answer in answers if answer != "None")
        majority = counts.most_common(1)[0][0] if counts else None
        rewards = [float(majority is not None and grade_answer(answer, majority)) for answer in answers]
        labels[prompt_id] = {"label": majority, "reward_mean": sum(rewards) / len(rewards)}
    out.write_text(json.dumps(labels))


def _write_load(path: Path, steps: int, seed: int) -> dict[str, list[str]]:
    load = make_vote_load(steps=steps, seed=seed)
    with path.open("w", encoding="utf-8") as handle:
        for prompt_id, index, response in zip(
            load.prompt_ids, load.response_indexes, load.responses, strict=True
        ):
            handle.write(
                json.dumps({"prompt_id": prompt_id, "response_index": index, "response": response}) + "\n"
            )
    return load.truth


def _timed(command: list[str]) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _label_quality(labels: dict[str, str | None], truth: dict[str, list[str]]) -> tuple[float, float]:
    """(share of prompts labelled, share of labels that math-verify finds equal to the true answer).

    The reference labels every prompt that has a box; mmupt skips ties and weak majorities, so
    the precision of the labels given is the comparable figure.
    """
    from math_verify import parse, verify

    given = right = 0
    for prompt_id, spellings in truth.items():
        label = labels.get(prompt_id)
        if label is None:
            continue
        given += 1
        gold = parse(f"${spellings[0]}$")
        if label.strip() in spellings or verify(gold, parse(f"${label}$")):
            right += 1
    return given / len(truth), right / max(given, 1)


def _mmupt_labels(out_dir: Path) -> dict[str, str | None]:
    import pyarrow.parquet as pq

    table = pq.read_table(out_dir / "labels.parquet").to_pydict()
    return dict(zip(table["prompt_id"], table["pseudo_label"], strict=True))


def in_process_vote_seconds(steps: int, seed: int, repeats: int) -> tuple[float, dict[str, int]]:
    """Best wall time of one step's vote (5,120 responses) in this process, symbolic worker warm."""
    import pyarrow as pa

    from mmupt.answers import answers_equivalent
    from schemas.vote import VoteConfig
    from stages.vote import vote_rollouts

    load = make_vote_load(steps=1, seed=seed + 1)
    table = pa.table(
        {"prompt_id": load.prompt_ids, "response_index": load.response_indexes, "response": load.responses}
    )
    answers_equivalent("x+1", "1+x")  # start the worker outside the timing
    best = float("inf")
    for _ in range(repeats):
        from mmupt import answers

        answers.clear_caches()
        start = time.perf_counter()
        vote_rollouts(table, VoteConfig())
        best = min(best, time.perf_counter() - start)
    return best, answers.symbolic_counters()


def hostile_vote_seconds() -> tuple[float, float, dict[str, int]]:
    """(whole batch, slowest prompt) seconds to vote 512 x 10 hostile responses in this process."""
    from mmupt import answers
    from schemas.vote import VoteConfig
    from stages.vote import vote_group

    load = make_hostile_load()
    config = VoteConfig()
    batch = answers.SymbolicBudget(config.max_batch_symbolic_seconds)
    groups: dict[str, list[str | None]] = {}
    for prompt_id, response in zip(load.prompt_ids, load.responses, strict=True):
        groups.setdefault(prompt_id, []).append(answers.extract_answer(response))
    answers.clear_caches()
    before = answers.symbolic_counters()
    slowest = 0.0
    start = time.perf_counter()
    for group in groups.values():
        prompt_start = time.perf_counter()
        vote_group(group, config, batch)
        slowest = max(slowest, time.perf_counter() - prompt_start)
    total = time.perf_counter() - start
    after = answers.symbolic_counters()
    return total, slowest, {name: after[name] - before[name] for name in after}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reference-only", nargs=2, type=Path, metavar=("ROLLOUTS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.reference_only:
        reference_vote(*args.reference_only)
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rollouts = work / "rollouts.jsonl"
        truth = _write_load(rollouts, args.steps, args.seed)
        n_responses = sum(1 for _ in rollouts.open())
        mmupt = [
            str(ROOT / ".venv/bin/mmupt"),
            "vote",
            "--rollouts",
            str(rollouts),
            "--out",
            str(work / "vote"),
        ]
        reference = [
            sys.executable,
            __file__,
            "--reference-only",
            str(rollouts),
            str(work / "reference.json"),
        ]
        times: dict[str, list[float]] = {"reference": [], "mmupt": []}
        for _ in range(args.repeats):
            times["reference"].append(_timed(reference))
            times["mmupt"].append(_timed(mmupt))
        reference_labels = {
            k: v["label"] for k, v in json.loads((work / "reference.json").read_text()).items()
        }
        quality = {
            "reference": _label_quality(reference_labels, truth),
            "mmupt": _label_quality(_mmupt_labels(work / "vote"), truth),
        }
    in_process, counters = in_process_vote_seconds(args.steps, args.seed, args.repeats)
    best = {name: min(values) for name, values in times.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"load: {n_responses} responses, {len(truth)} prompts (seed {args.seed}); best of {args.repeats}, alternating"
    )
    print("| approach | whole process (s) | all runs (s) | prompts labelled | labels right |")
    print("|---|---:|---:|---:|---:|")
    for name in ("reference", "mmupt"):
        runs = ", ".join(f"{value:.1f}" for value in times[name])
        labelled, precision = quality[name]
        print(f"| {name} | {best[name]:.2f} | {runs} | {labelled:.4f} | {precision:.4f} |")
    print(f"speed-up (reference / mmupt): {best['reference'] / best['mmupt']:.1f}x")
    print(f"in-process vote of one step (5,120 responses): {in_process:.3f} s; symbolic work: {counters}")
    total, slowest, hostile = hostile_vote_seconds()
    print(
        f"hostile batch (512 x 10, every answer expensive): {total:.2f} s, slowest prompt {slowest:.3f} s; {hostile}"
    )


if __name__ == "__main__":
    main()
