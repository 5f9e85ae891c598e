"""Per-token log-probabilities and entropies from logits, without a second (B, T, V) tensor.

Why not ``log_softmax(logits).gather(labels)``: ``log_softmax`` allocates a full (B, T, V) output and
autograd keeps it for the backward pass. ``F.cross_entropy(reduction="none")`` computes that same
``log_softmax`` internally and saves it too, so it is no better. With a 152k vocabulary and 2k-token
responses that is ~1.2 GB of float32 per sequence on top of the logits themselves.

What we do instead: ``log p(y) = z_y - logsumexp(z)``, computed chunk by chunk along T inside a
custom ``autograd.Function`` that saves only the logits (already alive), the labels and one float
per token (the logsumexp). The backward pass recomputes ``softmax`` per chunk:
``d log p(y) / dz = onehot(y) - softmax(z)``. Peak extra memory is one (chunk, V) float32 block.
Math is done in float32 even for bf16 logits (logsumexp over 152k entries in bf16 is off by
~1e-2), and the result is float32, which the PPO ratio ``exp(logp - old_logp)`` needs.

Alignment: ``logits[:, t]`` must be the prediction for ``labels[:, t]``; the caller shifts
(``logits[:, :-1]`` with ``input_ids[:, 1:]``). Slices like that are used in place, never copied.
Pass the rollout ``temperature`` so the log-probs are those of the distribution that was sampled.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

DEFAULT_CHUNK = 1024  # tokens per chunk: a (1024, 152k) float32 block is ~0.6 GB


def _chunks(batch: int, length: int, chunk: int) -> Iterator[tuple[int, slice]]:
    """(row, time slice) blocks covering (B, T); rows are never merged so strided inputs stay views."""
    for b in range(batch):
        for s in range(0, length, chunk):
            yield b, slice(s, min(s + chunk, length))


def _compute_dtype(logits: Tensor) -> torch.dtype:
    return torch.promote_types(logits.dtype, torch.float32)  # bf16/fp16 -> fp32, fp64 stays fp64


class _TokenLogProb(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, logits: Tensor, labels: Tensor, temperature: float, chunk: int) -> Tensor:
        dt = _compute_dtype(logits)
        B, T, _ = logits.shape
        out = torch.empty(B, T, dtype=dt, device=logits.device)  # (B, T)
        lse = torch.empty(B, T, dtype=dt, device=logits.device)  # (B, T)
        for b, ts in _chunks(B, T, chunk):
            z = logits[b, ts].to(dt) / temperature  # (c, V)
            lse[b, ts] = torch.logsumexp(z, dim=-1)
            out[b, ts] = z.gather(-1, labels[b, ts, None]).squeeze(-1) - lse[b, ts]
        ctx.save_for_backward(logits, labels, lse)
        ctx.temperature, ctx.chunk = temperature, chunk  # type: ignore[attr-defined]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor, None, None, None]:
        logits, labels, lse = ctx.saved_tensors  # type: ignore[attr-defined]
        temperature, chunk = ctx.temperature, ctx.chunk  # type: ignore[attr-defined]
        dt = lse.dtype
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)  # (B, T, V)
        B, T, _ = logits.shape
        for b, ts in _chunks(B, T, chunk):
            g_out = grad_out[b, ts, None].to(dt)  # (c, 1)
            p = torch.exp(logits[b, ts].to(dt) / temperature - lse[b, ts, None])  # (c, V) softmax
            g = (-p * g_out).scatter_add_(-1, labels[b, ts, None], g_out)  # (onehot - p) * g_out
            grad[b, ts] = (g / temperature).to(grad.dtype)
        return grad, None, None, None


class _Entropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, logits: Tensor, temperature: float, chunk: int) -> Tensor:
        dt = _compute_dtype(logits)
        B, T, _ = logits.shape
        lse = torch.empty(B, T, dtype=dt, device=logits.device)  # (B, T)
        mean_z = torch.empty(B, T, dtype=dt, device=logits.device)  # (B, T) E_p[z]
        for b, ts in _chunks(B, T, chunk):
            z = logits[b, ts].to(dt) / temperature  # (c, V)
            lse[b, ts] = torch.logsumexp(z, dim=-1)
            mean_z[b, ts] = (torch.exp(z - lse[b, ts, None]) * z).sum(-1)
        ctx.save_for_backward(logits, lse, mean_z)
        ctx.temperature, ctx.chunk = temperature, chunk  # type: ignore[attr-defined]
        return lse - mean_z  # H = -sum p log p = lse - E_p[z]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor, None, None]:
        logits, lse, mean_z = ctx.saved_tensors  # type: ignore[attr-defined]
        temperature, chunk = ctx.temperature, ctx.chunk  # type: ignore[attr-defined]
        dt = lse.dtype
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)  # (B, T, V)
        B, T, _ = logits.shape
        for b, ts in _chunks(B, T, chunk):
            z = logits[b, ts].to(dt) / temperature  # (c, V)
            p = torch.exp(z - lse[b, ts, None])  # (c, V)
            g = -p * (z - mean_z[b, ts, None]) * grad_out[b, ts, None].to(dt)  # dH/dz = -p (z - E_p[z])
            grad[b, ts] = (g / temperature).to(grad.dtype)
        return grad, None, None


def token_logprobs(
    logits: Tensor, labels: Tensor, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK
) -> Tensor:
    """``log softmax(logits / temperature)[labels]``: logits (B, T, V), labels (B, T) -> (B, T) float32+.

    Labels < 0 (e.g. -100 padding) give 0 and no gradient. Differentiable w.r.t. ``logits``.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"need logits (B, T, V) and labels (B, T), got {tuple(logits.shape)}, {tuple(labels.shape)}"
        )
    _check_args(temperature, chunk_size)
    ignored = labels < 0  # (B, T)
    out = _TokenLogProb.apply(logits, labels.clamp(min=0).long(), float(temperature), int(chunk_size))
    return out.masked_fill(ignored, 0.0)


def entropy_from_logits(logits: Tensor, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """Entropy in nats of ``softmax(logits / temperature)`` per position: (B, T, V) -> (B, T) float32+.

    Differentiable (for an entropy bonus); call under ``torch.no_grad()`` when only logging it.
    """
    if logits.dim() != 3:
        raise ValueError(f"need logits (B, T, V), got {tuple(logits.shape)}")
    _check_args(temperature, chunk_size)
    return _Entropy.apply(logits, float(temperature), int(chunk_size))


def _check_args(temperature: float, chunk_size: int) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
