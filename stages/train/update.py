"""The GRPO update on a DeepSpeed engine: micro-batched, gradient-accumulated, exact across workers.

One rollout batch -> ``ppo_epochs`` x (prompts per step / prompts per update) optimizer steps.
Two details make the result independent of how the batch is cut into micro-batches and workers:

1. Exact aggregation. Each micro-batch's loss (aggregated over its own tokens with ``loss_agg``) is
   weighted by its share of the *global* update batch: tokens for ``token_mean``, sequences for the
   ``seq_mean_*`` aggregations, counted with one all-reduce. DeepSpeed averages gradients over
   workers, so the weight carries a factor ``world_size``. The sum of the weighted micro-batch
   gradients is then the gradient of the loss over the whole update batch, whatever the micro-batch
   size, the number of workers or the number of skipped groups on each of them.
2. Equal collective calls. ZeRO reduces gradients inside ``backward``, so every worker must run the
   same number of backward passes per optimizer step. Workers with fewer micro-batches (their groups
   were skipped) run zero-weighted passes over a stand-in sequence; the accumulation boundary is set
   by hand (``set_gradient_accumulation_boundary``) because that count varies from step to step.

Log-probs: only the logits from the shortest prompt onwards are computed (``logits_to_keep``), then
each row's response positions are gathered into a left-aligned (B, R) block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from transformers import BatchFeature, ProcessorMixin

from mmupt.modeling.inputs import prompt_text, training_batch
from mmupt.rl import entropy_from_logits, token_logprobs, total_loss
from schemas.grpo import LossAgg
from schemas.train import TrainConfig

ACTOR_METRICS = ("loss", "pg_loss", "clip_frac", "approx_kl", "ratio_mean", "kl", "entropy")


@dataclass(frozen=True)
class TrainSequence:
    """One trainable response: its prompt, the sampled token ids and its advantage."""

    problem: str
    images: list[bytes]
    response: list[int]
    advantage: float
    rollout_logprobs: list[float] | None = None  # one per response token, recorded while sampling


@dataclass
class MicroBatch:
    """Model inputs of a few sequences plus where their response tokens are, built once per step."""

    inputs: BatchFeature  # input_ids, attention_mask, (mm_token_type_ids, pixel_values, image_grid_thw)
    logits_to_keep: int  # positions from the shortest prompt's last token to the end
    labels: Tensor  # (B, K) next-token labels at the kept positions, -100 outside responses
    index: Tensor  # (B, R) position of each response token in the kept logits
    mask: Tensor  # (B, R) 1 on real response tokens
    advantages: Tensor  # (B,)
    old_logprobs: Tensor | None = None  # (B, R) under the rollout policy, computed once
    rollout_logprobs: Tensor | None = None  # (B, R) as the engine recorded them, when every sequence has them
    ref_logprobs: Tensor | None = None  # (B, R) under the frozen reference

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())

    @property
    def n_sequences(self) -> int:
        return int(self.mask.shape[0])


def build_micro_batch(processor: ProcessorMixin, seqs: Sequence[TrainSequence]) -> MicroBatch:
    prompts = [prompt_text(processor, s.problem, len(s.images)) for s in seqs]
    batch = training_batch(processor, prompts, [s.images for s in seqs], [s.response for s in seqs])
    response_mask = batch.pop("response_mask")  # (B, L)
    batch.pop("labels")
    input_ids = batch["input_ids"]  # (B, L)
    length = input_ids.shape[1]
    starts = response_mask.argmax(dim=1)  # (B,) first response position
    lengths = response_mask.sum(dim=1)  # (B,)
    first = int(starts.min())
    keep = length - first + 1  # logits at positions first-1 .. L-1
    # Label of kept position k is the token at absolute position (L - keep) + k + 1.
    shifted = torch.full((len(seqs), keep), -100, dtype=torch.long)
    shifted[:, :-1] = input_ids[:, length - keep + 1 :].masked_fill(
        response_mask[:, length - keep + 1 :] == 0, -100
    )
    width = int(lengths.max())
    offsets = torch.arange(width)  # (R,)
    mask = (offsets[None, :] < lengths[:, None]).long()  # (B, R)
    index = (starts[:, None] - first + offsets[None, :]).clamp(max=keep - 1) * mask  # (B, R)
    advantages = torch.tensor([s.advantage for s in seqs], dtype=torch.float32)
    recorded = None
    if all(s.rollout_logprobs is not None and len(s.rollout_logprobs) == len(s.response) for s in seqs):
        recorded = torch.zeros(len(seqs), width, dtype=torch.float32)
        for row, s in enumerate(seqs):
            recorded[row, : len(s.response)] = torch.tensor(s.rollout_logprobs, dtype=torch.float32)
    return MicroBatch(
        BatchFeature(dict(batch)), keep, shifted, index, mask, advantages, rollout_logprobs=recorded
    )


def response_logprobs(
    model: Callable[..., Any], mb: MicroBatch, temperature: float, entropy: str = "none"
) -> tuple[Tensor, Tensor | None]:
    """Per-token log-probs (B, R) of the responses, and their entropies (B, R).

    ``entropy``: ``none``; ``detached`` (for logging: no graph kept, same logits); ``grad`` (a bonus term).
    """
    device = _device_of(model)
    inputs = {k: v.to(device) for k, v in mb.inputs.items()}
    logits = model(**inputs, logits_to_keep=mb.logits_to_keep, use_cache=False).logits  # (B, K, V)
    index, labels = mb.index.to(device), mb.labels.to(device)
    logprobs = token_logprobs(logits, labels, temperature).gather(1, index)  # (B, R)
    if entropy == "none":
        return logprobs, None
    if entropy == "grad":
        return logprobs, entropy_from_logits(logits, temperature).gather(1, index)  # (B, R)
    with torch.no_grad():
        return logprobs, entropy_from_logits(logits.detach(), temperature).gather(1, index)  # (B, R)


def _device_of(model: Any) -> torch.device:
    module = getattr(model, "module", model)
    return next(module.parameters()).device


@dataclass
class UpdateStats:
    """Local (this worker) sums for the step's metrics; the trainer reduces them across workers."""

    sums: dict[str, float] = field(default_factory=dict)  # metric -> sum of value * tokens
    tokens: float = 0.0  # weight of the sums
    optimizer_steps: int = 0
    skipped_minibatches: int = 0
    grad_norms: list[float] = field(default_factory=list)
    logprob_seconds: float = 0.0


class PolicyUpdater:
    """Runs the GRPO update of one rollout batch on a DeepSpeed engine."""

    def __init__(
        self,
        engine: Any,
        reference: torch.nn.Module | None,
        processor: ProcessorMixin,
        config: TrainConfig,
        world_size: int,
        use_adapter_reference: bool = False,
    ):
        self.engine = engine
        self.reference = reference
        self.processor = processor
        self.config = config
        self.algo = config.algorithm
        self.world_size = world_size
        self.use_adapter_reference = use_adapter_reference

    # ------------------------------------------------------------------ public
    def update(self, minibatches: list[list[TrainSequence]], stand_in: TrainSequence) -> UpdateStats:
        """``minibatches``: this worker's trainable sequences of each update batch (may be empty)."""
        import time

        stats = UpdateStats()
        size = self.config.update.micro_batch_size
        micro = [
            [build_micro_batch(self.processor, mb[i : i + size]) for i in range(0, len(mb), size)]
            for mb in minibatches
        ]
        dummy = build_micro_batch(self.processor, [stand_in])
        started = time.perf_counter()
        self._fill_fixed_logprobs([m for mbs in micro for m in mbs] + [dummy])
        stats.logprob_seconds = time.perf_counter() - started
        for _ in range(self.algo.ppo_epochs):
            for mbs in micro:
                self._optimizer_step(mbs, dummy, stats)
        return stats

    # ------------------------------------------------------------------ internals
    @torch.no_grad()
    def _fill_fixed_logprobs(self, batches: list[MicroBatch]) -> None:
        """Old (rollout policy) and reference log-probs, once per step before any weight moves.

        With ``algorithm.old_logprobs: rollout`` the old ones are those the engine recorded while
        sampling with these same weights, so that forward pass is skipped (verl and TRL do the same).
        """
        module = self.engine.module
        module.eval()
        temperature = self.config.rollout.temperature
        reuse = self.algo.old_logprobs == "rollout"
        for mb in batches:
            if reuse and mb.rollout_logprobs is not None:
                mb.old_logprobs = mb.rollout_logprobs
            else:
                mb.old_logprobs, _ = response_logprobs(module, mb, temperature)
            if self.algo.uses_reference:
                if self.use_adapter_reference:
                    with module.disable_adapter():
                        mb.ref_logprobs, _ = response_logprobs(module, mb, temperature)
                else:
                    assert self.reference is not None
                    mb.ref_logprobs, _ = response_logprobs(self.reference, mb, temperature)

    def _optimizer_step(self, local: list[MicroBatch], dummy: MicroBatch, stats: UpdateStats) -> None:
        by_sequence = self.algo.loss_agg != LossAgg.TOKEN_MEAN
        units = [float(mb.n_sequences if by_sequence else mb.n_tokens) for mb in local]
        totals = torch.tensor([sum(units), float(len(local))], dtype=torch.float64)
        total_units, passes = (
            self._all_reduce(totals[:1]).item(),
            int(self._all_reduce(totals[1:], "max").item()),
        )
        if total_units == 0:
            stats.skipped_minibatches += 1  # no worker has a trainable sequence in this update batch
            return
        engine = self.engine
        engine.module.train()
        temperature = self.config.rollout.temperature
        entropy_mode = "grad" if self.algo.entropy_coef > 0 else "detached"
        for i in range(passes):
            real = i < len(local)
            mb = local[i] if real else dummy
            weight = units[i] / total_units if real else 0.0
            engine.set_gradient_accumulation_boundary(i == passes - 1)
            logprobs, entropy = response_logprobs(engine, mb, temperature, entropy_mode)
            device = logprobs.device
            old = mb.old_logprobs if real else logprobs.detach()
            ref = mb.ref_logprobs if real else logprobs.detach()
            loss, metrics = total_loss(
                logprobs,
                old.to(device),
                mb.advantages.to(device),
                mb.mask.to(device),
                self.algo,
                self.config.rollout.max_response_length,
                ref_logprobs=ref.to(device) if self.algo.uses_reference else None,
                entropy=entropy,
            )
            engine.backward(loss * (weight * self.world_size), scale_wrt_gas=False)
            if real:
                tokens = float(mb.n_tokens)
                for key in ACTOR_METRICS:
                    if key in metrics:
                        stats.sums[key] = stats.sums.get(key, 0.0) + float(metrics[key]) * tokens
                stats.tokens += tokens
        engine.step()
        stats.optimizer_steps += 1
        norm = engine.get_global_grad_norm()
        if norm is not None:
            stats.grad_norms.append(float(norm))

    @staticmethod
    def _all_reduce(values: Tensor, op: str = "sum") -> Tensor:
        if not dist.is_available() or not dist.is_initialized():
            return values
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        out = values.to(device)
        dist.all_reduce(out, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return out.cpu()
