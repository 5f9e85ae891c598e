"""Configs of the generation engine: which backend, and how to sample."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import StrictModel


class SamplingParams(StrictModel):
    """How to sample completions for one batch of requests."""

    n: int = Field(1, ge=1, description="Completions per request, sampled from one shared prefill.")
    temperature: float = Field(1.0, ge=0.0, description="0 means greedy decoding (then n must be 1).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(64, ge=1, description="Upper bound on generated tokens per completion.")
    seed: int | None = Field(0, description="Seed for reproducible sampling; None draws a fresh one.")
    logprobs: bool = Field(
        False,
        description=(
            "Also return each sampled token's log-prob under the temperature-scaled distribution over the "
            "whole vocabulary (the trainer's 'old' log-probs; hf backend)."
        ),
    )

    @model_validator(mode="after")
    def _greedy_is_single(self) -> SamplingParams:
        if self.temperature == 0.0 and self.n > 1:
            raise ValueError(
                "temperature 0 (greedy) gives n identical completions: set n: 1 or temperature > 0"
            )
        return self


class EngineConfig(StrictModel):
    """Which backend generates, on which device."""

    backend: Literal["hf", "vllm"] = Field("hf", description="hf: transformers, any device. vllm: GPU only.")
    device: str = Field("cpu", description="torch device for the hf backend (cpu, cuda, cuda:1).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights and compute dtype."
    )
    batch_size: int = Field(16, ge=1, description="Requests prefilled together (hf backend).")
    gpu_memory_utilization: float = Field(
        0.6, gt=0, le=1, description="vllm: share of GPU memory it may take."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per engine.")
