"""Rollouts: n responses per prompt from the current policy, through the shared engine interface.

hf backend: the engine wraps the worker's *live* policy module (the DeepSpeed engine's ``module``),
so there is no weight copy to keep in sync; generation runs in eval mode without gradients. Under
ZeRO-3 the partitioned parameters are gathered once for the whole generation call instead of once
per decoded token.

vllm backend (GPU): a colocated vLLM engine per worker, refreshed with the policy's weights after
every update (``VLLMEngine.load_weights``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mmupt.engine.base import Completion, Engine, GenerationRequest
from schemas.engine import SamplingParams
from schemas.train import TrainConfig
from stages.train.data import Prompt

END_OF_TURN = "<|im_end|>"


def rollout_seed(seed: int, step: int, rank: int) -> int:
    """A sampling seed that depends only on (seed, step, rank): resumed steps sample what they did."""
    digest = hashlib.sha256(f"mmupt-rollout|{seed}|{step}|{rank}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sampling_params(config: TrainConfig, seed: int) -> SamplingParams:
    r = config.rollout
    return SamplingParams(
        n=r.n,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_response_length,
        seed=seed,
        logprobs=config.algorithm.old_logprobs == "rollout",
    )


def response_ids(completion: Completion, end_of_turn_id: int) -> list[int]:
    """The tokens the policy is trained on: what it sampled, plus the end-of-turn token if it stopped.

    The stop token is part of the decision (stopping here), so it gets a log-prob and a gradient;
    a truncated response (finish_reason ``length``) has none.
    """
    ids = list(completion.token_ids)
    return ids + [end_of_turn_id] if completion.finish_reason == "stop" else ids


def vision_token_ids(processor: Any) -> set[int]:
    """Ids of the tokens that mark where image/video features go: never trainable response tokens."""
    tokenizer = processor.tokenizer
    names = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    ids = {tokenizer.convert_tokens_to_ids(name) for name in names}
    return {i for i in ids if isinstance(i, int) and i >= 0 and i != tokenizer.unk_token_id}


def trainable_response(completion: Completion, end_of_turn_id: int, vision_ids: set[int]) -> list[int] | None:
    """The response's training tokens, or None when it cannot be trained on.

    A sampled vision placeholder (``<|image_pad|>``, ...) would make the training forward look for an
    image that is not there, and replacing it would change what the policy conditioned on; such a
    response (rare, mostly from barely trained models) still votes, but is left out of the loss.
    """
    ids = response_ids(completion, end_of_turn_id)
    if not ids or vision_ids.intersection(ids):
        return None
    return ids


@contextlib.contextmanager
def gathered_parameters(module: torch.nn.Module, zero_stage: int) -> Iterator[None]:
    """Under ZeRO-3, materialise the full parameters for a block of read-only use; else nothing."""
    if zero_stage != 3:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        yield


@dataclass
class Rollouts:
    """One worker's rollouts of one step: prompts and their completions, in order."""

    prompts: list[Prompt]
    completions: list[list[Completion]]

    @property
    def response_tokens(self) -> int:
        return sum(len(c.token_ids) for group in self.completions for c in group)


class RolloutEngine:
    """The engine a worker samples with, bound to its policy module."""

    def __init__(self, engine: Engine, module: torch.nn.Module, zero_stage: int, backend: str):
        self.engine = engine
        self.module = module
        self.zero_stage = zero_stage
        self.backend = backend

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingParams) -> Rollouts:
        requests = [GenerationRequest(p.id, p.problem, p.images) for p in prompts]
        if self.backend == "hf":
            self.module.eval()
            with torch.no_grad(), gathered_parameters(self.module, self.zero_stage):
                completions = self.engine.generate(requests, sampling)
        else:
            completions = self.engine.generate(requests, sampling)
        return Rollouts(list(prompts), completions)

    def refresh(self) -> None:
        """Push the updated policy weights into a separate inference engine (vllm); hf shares them."""
        if self.backend == "hf":
            return
        with torch.no_grad(), gathered_parameters(self.module, self.zero_stage):
            self.engine.load_weights((name, p.detach()) for name, p in self.module.named_parameters())  # type: ignore[attr-defined]
