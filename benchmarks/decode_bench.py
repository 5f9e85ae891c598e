"""Decode-loop speed on a trained model, where responses end at uneven lengths, in one run.

    .venv/bin/python benchmarks/decode_bench.py --run runs/demo [--prompts 32] [--repeats 3]

``--run`` is a finished ``mmupt demo`` directory: its SFT model and world are the load (a random
model never stops, so it cannot show what finished rows cost). Two comparisons, each interleaved
per repeat and checked for identical tokens:
  sampling - n 16 at T 0.6 (the frozen teacher's load): finished rows kept in the batch vs dropped
  greedy   - 256 held-out rows (the evaluation's load): 16 vs 64 requests per batch, rows dropped
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mmupt.engine.base import GenerationRequest
from mmupt.engine.hf import HFEngine
from mmupt.modeling.loader import load_model_and_processor
from schemas.engine import SamplingParams
from stages.sft import split_rows

NEVER = 2.0  # drop_finished_share above 1: finished rows stay in the batch (the old loop)


def timed(engine: HFEngine, requests: list[GenerationRequest], sampling: SamplingParams):
    start = time.perf_counter()
    out = engine.generate(requests, sampling)
    return time.perf_counter() - start, [[c.token_ids for c in group] for group in out]


def compare(name: str, engines: dict[str, HFEngine], requests, sampling, repeats: int) -> None:
    seconds: dict[str, list[float]] = {label: [] for label in engines}
    tokens: dict[str, list] = {}
    for engine in engines.values():  # warm-up
        engine.generate(requests[:4], sampling)
    for _ in range(repeats):
        for label, engine in engines.items():
            dt, tokens[label] = timed(engine, requests, sampling)
            seconds[label].append(dt)
    base, fast = list(engines)
    produced = sum(len(t) for group in tokens[fast] for t in group)
    same = tokens[base] == tokens[fast]
    b, f = statistics.median(seconds[base]), statistics.median(seconds[fast])
    print(
        f"{name}: {base} {b:.2f} s, {fast} {f:.2f} s -> {b / f:.2f}x "
        f"({produced} tokens, {produced / f:,.0f} tokens/s); identical tokens: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, processor = load_model_and_processor(args.run / "round-0/sft/model", "cpu")
    rows = split_rows(args.run / "round-0/world", "heldout").slice(0, 256).to_pylist()
    requests = [GenerationRequest(str(i), r["problem"], r["images"]) for i, r in enumerate(rows)]

    def engine(batch_size: int, share: float) -> HFEngine:
        e = HFEngine(model, processor, model_id="bench", batch_size=batch_size)
        e.drop_finished_share = share
        return e

    sampling = SamplingParams(n=16, temperature=0.6, max_new_tokens=64, seed=0)
    compare(
        "sampling n 16",
        {"kept": engine(16, NEVER), "dropped": engine(16, 0.125)},
        requests[: args.prompts],
        sampling,
        args.repeats,
    )
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=64)
    compare(
        "greedy 256 rows",
        {"batch 16": engine(16, 0.125), "batch 64": engine(64, 0.125)},
        requests,
        greedy,
        args.repeats,
    )


if __name__ == "__main__":
    main()
