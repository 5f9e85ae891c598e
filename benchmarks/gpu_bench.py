"""GPU check of the training and rollout paths: bf16 DeepSpeed ZeRO-2 update step, and a vLLM rollout.

    bash benchmarks/gpu.sh            # on a CUDA machine; prints a Markdown block for REPORT.md

Update step: a Qwen2.5-VL-architecture language model of ``--hidden``/``--layers`` (random
weights, text-only batches: the update's cost is the language model's) trained with the
repository's ``deploy/deepspeed/zero2.json`` in bf16; tokens/s over timed steps after warm-up, and
MFU = 6 x parameters x tokens/s / the card's bf16 dense peak (``--peak-tflops``, default H100/H200
989). Rollout: vLLM's ``generate`` on ``--vllm-model`` when vLLM is installed (skipped otherwise),
tokens/s at n = 8.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def update_step(hidden: int, layers: int, batch: int, seq: int, steps: int) -> dict[str, float]:
    import deepspeed
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    heads = max(1, hidden // 128)
    config = Qwen2Config(
        vocab_size=32_000,
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 4),
        max_position_embeddings=seq,
        torch_dtype="bfloat16",
    )
    model = Qwen2ForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    ds_config = json.loads((ROOT / "deploy/deepspeed/zero2.json").read_text())
    ds_config.update(
        train_micro_batch_size_per_gpu=batch,
        gradient_accumulation_steps=1,
        train_batch_size=batch * int(os.environ.get("WORLD_SIZE", "1")),
        gradient_clipping=1.0,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    tokens = torch.randint(0, config.vocab_size, (batch, seq), device=engine.device)
    for step in range(steps + 2):
        if step == 2:  # two warm-up steps (allocator, kernels)
            torch.cuda.synchronize()
            started = time.perf_counter()
        loss = engine(input_ids=tokens, labels=tokens).loss
        engine.backward(loss)
        engine.step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / steps
    return {
        "params_m": params / 1e6,
        "step_s": seconds,
        "tokens_per_s": batch * seq / seconds,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def vllm_rollout(model: str, prompts: int, n: int, max_tokens: int) -> dict[str, float] | None:
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        return None
    llm = LLM(model=model, dtype="bfloat16", gpu_memory_utilization=0.5)
    params = SamplingParams(n=n, temperature=1.0, max_tokens=max_tokens, ignore_eos=True)
    batch = [f"Question {i}: how many dots are there? Think step by step." for i in range(prompts)]
    llm.generate(batch[:2], params)  # warm-up
    started = time.perf_counter()
    outputs = llm.generate(batch, params)
    seconds = time.perf_counter() - started
    generated = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    return {"tokens_per_s": generated / seconds, "seconds": seconds, "n": n, "prompts": prompts}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak of the card")
    parser.add_argument("--vllm-model", default=None, help="a local HF checkpoint for the vLLM rollout")
    parser.add_argument("--local_rank", type=int, default=0)  # set by the deepspeed launcher
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_bench: no CUDA device; run this on a GPU machine")
    result = update_step(args.hidden, args.layers, args.batch, args.seq, args.steps)
    mfu = 6 * result["params_m"] * 1e6 * result["tokens_per_s"] / (args.peak_tflops * 1e12)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(
        "| update step (bf16, ZeRO-2) | params (M) | batch x seq | s/step | tokens/s | MFU | peak mem (GiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.layers} layers x {args.hidden} | {result['params_m']:.0f} | {args.batch} x {args.seq} | "
        f"{result['step_s']:.3f} | {result['tokens_per_s']:,.0f} | {mfu:.1%} | {result['peak_mem_gib']:.1f} |"
    )
    if args.vllm_model:
        rollout = vllm_rollout(args.vllm_model, prompts=64, n=8, max_tokens=256)
        print(
            "vLLM rollout: not installed"
            if rollout is None
            else f"vLLM rollout (n=8, 64 prompts, 256 tokens): {rollout['tokens_per_s']:,.0f} tokens/s"
        )


if __name__ == "__main__":
    main()
