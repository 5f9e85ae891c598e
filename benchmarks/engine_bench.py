"""Shared-prefix sampling vs n independent ``generate`` calls, on the tiny model, in one run.

    .venv/bin/python benchmarks/engine_bench.py [--n 8] [--prompts 8] [--tokens 32] [--repeats 3]

Three ways to get n samples for each prompt, with the same weights, on the same machine, interleaved
per repeat so machine noise hits all of them alike:
  shared  - HFEngine: one prefill per prompt (image encoded once), KV cache repeated n times
  naive   - HFEngine with share_prefix=False: n prefills per prompt, same decode loop
  generate- transformers ``model.generate(do_sample=True)`` called n times per prompt batch
Reports generated tokens/s for each and the ratios; the median over repeats is kept.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time

import torch
from PIL import Image, ImageDraw

from mmupt.engine.base import GenerationRequest
from mmupt.engine.hf import HFEngine
from mmupt.modeling.factory import create_tiny_model
from mmupt.modeling.inputs import encode, prompt_text
from schemas.engine import SamplingParams
from schemas.model import TinyModelConfig


def image(seed: int) -> bytes:
    img = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(img).ellipse((seed % 50, 10, seed % 50 + 30, 40), fill="red")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def run_generate(engine: HFEngine, requests: list[GenerationRequest], n: int, tokens: int) -> int:
    texts = [prompt_text(engine.processor, r.problem, len(r.images)) for r in requests]
    inputs = encode(engine.processor, texts, [r.images for r in requests])
    produced = 0
    with torch.inference_mode():
        for _ in range(n):
            out = engine.model.generate(
                **inputs,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
            )
            produced += (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    return produced


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = ["How many red circles are in the image?", "I count the red circles: 3. \\boxed{3}"] * 50
    with tempfile.TemporaryDirectory() as model_dir:
        create_tiny_model(TinyModelConfig(), texts, model_dir)
        engine = HFEngine.from_pretrained(model_dir)
        engine.stop_ids = torch.tensor([-1])  # never stop early: every path generates exactly `tokens`
        requests = [
            GenerationRequest(str(i), f"How many red circles are in image {i}?", [image(i)])
            for i in range(args.prompts)
        ]
        sampling = SamplingParams(n=args.n, temperature=1.0, max_new_tokens=args.tokens, seed=0)
        rates: dict[str, list[float]] = {"shared": [], "naive": [], "generate": []}
        for _ in range(args.repeats):
            for name in rates:
                start = time.perf_counter()
                if name == "generate":
                    produced = run_generate(engine, requests, args.n, args.tokens)
                else:
                    out = engine.generate(requests, sampling, share_prefix=(name == "shared"))
                    produced = sum(len(c.token_ids) for per in out for c in per)
                rates[name].append(produced / (time.perf_counter() - start))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"n={args.n} prompts={args.prompts} tokens={args.tokens} repeats={args.repeats} "
        f"threads={torch.get_num_threads()}"
    )
    for name, rate in med.items():
        print(f"{name:>9}: {rate:8.0f} tokens/s")
    print(
        f"shared/generate = {med['shared'] / med['generate']:.2f}x, shared/naive = {med['shared'] / med['naive']:.2f}x"
    )


if __name__ == "__main__":
    main()
