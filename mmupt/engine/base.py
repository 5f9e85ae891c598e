"""The generation engine interface shared by synthesis, rollouts and evaluation.

Backends differ only in how they run; callers see one contract:
``engine.generate(requests, sampling) -> list[list[Completion]]`` with one inner list of
``sampling.n`` completions per request, in request order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from schemas.engine import SamplingParams


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt: a question over zero or more images (encoded bytes), asked with the reasoning prompt."""

    request_id: str
    problem: str
    images: list[bytes] = field(default_factory=list)
    messages: list[dict] | None = None  # override the default reasoning prompt (e.g. synthesis prompts)


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (end-of-turn token) or "length"
    # with SamplingParams.logprobs: one per token of token_ids, then the stop token's when it stopped
    logprobs: list[float] | None = None


@runtime_checkable
class Engine(Protocol):
    model_id: str

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[list[Completion]]:
        """n completions per request, in request order."""
        ...
