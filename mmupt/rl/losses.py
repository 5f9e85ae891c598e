"""The GRPO loss: PPO clipped surrogate + KL to a reference + entropy bonus, aggregated over tokens.

Shapes: B responses, T response positions (right-padded); ``response_mask`` (B, T) is 1 on
real response tokens. Every per-token term goes through ``aggregate`` (the one dispatch point
over ``LossAgg``) and every KL estimate through ``kl_penalty`` (the one dispatch point over
``KLEstimator``); add a variant as a member of its Enum (``schemas.grpo``) and its function here
with its ``register_*`` decorator, never with an if/elif.

Metrics are detached 0-d tensors (not floats) so that computing them costs no device sync per
micro-batch; call ``.item()`` when logging. Keys:
- ``pg_loss``: the aggregated policy-gradient loss.
- ``clip_frac``: share of response tokens whose gradient was cut by a clip (PPO or dual).
- ``clip_frac_high`` / ``clip_frac_low``: PPO clip at 1 + clip_high (A > 0) / 1 - clip_low (A < 0).
- ``dual_clip_frac``: share of tokens capped by the dual clip (A < 0, ratio > dual_clip).
- ``approx_kl``: KL(pi_old || pi) per token, k3 estimator ``(ratio - 1) - log ratio`` (>= 0).
- ``ratio_mean``: mean of pi / pi_old over response tokens.
- ``kl``: mean KL estimate to the reference per token (when the KL term is on).
- ``entropy``: mean entropy per token, nats (when entropies are given).
- ``loss``: the total loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from schemas.grpo import AlgorithmConfig, KLEstimator, LossAgg

LOG_RATIO_CLAMP = 20.0  # exp(20) ~ 5e8: keeps exp() and its gradient finite for wildly off-policy tokens
K3_CLAMP = 10.0  # low_var_kl bound, for stability early in training when pi and pi_ref may be far apart


# ---------------------------------------------------------------------------- aggregation


AggFn = Callable[[Tensor, Tensor, int], Tensor]
_AGGREGATORS: dict[LossAgg, AggFn] = {}


def register_agg(name: LossAgg) -> Callable[[AggFn], AggFn]:
    """Register ``fn(values (B, T), mask (B, T) float, max_response_length) -> scalar`` under ``name``."""

    def wrap(fn: AggFn) -> AggFn:
        if name in _AGGREGATORS:
            raise ValueError(f"loss aggregation {name!r} is registered twice")
        _AGGREGATORS[name] = fn
        return fn

    return wrap


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over positions where ``mask`` is 1; 0 when the mask is empty."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _zero_padding(x: Tensor, keep: Tensor) -> Tensor:
    """Zero padded positions so a non-finite pad value (e.g. -inf log-prob) never reaches a sum.

    ``x * 0`` is NaN for ``x = inf``, and NaN in the forward pass also poisons the backward pass
    (``0 * exp(nan)``); ``masked_fill`` passes no gradient to the filled positions at all.
    """
    return x.masked_fill(~keep, 0.0)


@register_agg(LossAgg.TOKEN_MEAN)
def _token_mean(values: Tensor, mask: Tensor, max_response_length: int) -> Tensor:
    """sum_{i,t} m_it x_it / sum_{i,t} m_it: every token of the batch weighs the same.

    DAPO's token-level loss (arXiv:2503.14476, sec. 3.3): long responses are not down-weighted per token.
    """
    return masked_mean(values, mask)


@register_agg(LossAgg.SEQ_MEAN_TOKEN_MEAN)
def _seq_mean_token_mean(values: Tensor, mask: Tensor, max_response_length: int) -> Tensor:
    """mean_i (sum_t m_it x_it / |o_i|): the original GRPO objective (arXiv:2402.03300, eq. 3).

    Responses with no token are left out of the outer mean rather than counted as 0.
    """
    lengths = mask.sum(-1)  # (B,)
    per_seq = (values * mask).sum(-1) / lengths.clamp(min=1)  # (B,)
    has_tokens = (lengths > 0).to(values.dtype)  # (B,)
    return (per_seq * has_tokens).sum() / has_tokens.sum().clamp(min=1)


@register_agg(LossAgg.SEQ_MEAN_TOKEN_SUM_NORM)
def _seq_mean_token_sum_norm(values: Tensor, mask: Tensor, max_response_length: int) -> Tensor:
    """mean_i (sum_t m_it x_it / L) with L = max_response_length, a constant (Dr. GRPO, arXiv:2503.20783).

    Dividing by the response's own length favours long wrong answers; a constant does not.
    """
    if mask.shape[-1] > max_response_length:
        raise ValueError(
            f"max_response_length={max_response_length} is smaller than the batch's {mask.shape[-1]} "
            "response positions: pass the rollout's max_new_tokens"
        )
    return (values * mask).sum() / (mask.shape[0] * max_response_length)


def aggregate(values: Tensor, mask: Tensor, agg: LossAgg | str, max_response_length: int) -> Tensor:
    """Reduce per-token ``values`` (B, T) under ``mask`` (B, T) to a scalar, the one dispatch point."""
    if values.shape != mask.shape or values.dim() != 2:
        raise ValueError(
            f"values and mask must both be (B, T), got {tuple(values.shape)}, {tuple(mask.shape)}"
        )
    if max_response_length < 1:
        raise ValueError(f"max_response_length must be >= 1, got {max_response_length}")
    return _AGGREGATORS[LossAgg(agg)](values, mask.to(values.dtype), max_response_length)


# ---------------------------------------------------------------------------- KL to the reference


KLFn = Callable[[Tensor, Tensor], Tensor]
_KL: dict[KLEstimator, KLFn] = {}


def register_kl(name: KLEstimator) -> Callable[[KLFn], KLFn]:
    """Register ``fn(logprobs (B, T), ref_logprobs (B, T)) -> (B, T)`` under ``name``."""

    def wrap(fn: KLFn) -> KLFn:
        if name in _KL:
            raise ValueError(f"KL estimator {name!r} is registered twice")
        _KL[name] = fn
        return fn

    return wrap


@register_kl(KLEstimator.NONE)
def _kl_none(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """No KL term: zeros (B, T)."""
    return torch.zeros_like(logprobs)


@register_kl(KLEstimator.K1)
def _kl_k1(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k1 = log pi - log pi_ref: unbiased for KL(pi || pi_ref) on samples of pi, high variance, can be < 0."""
    return logprobs - ref_logprobs


@register_kl(KLEstimator.K2)
def _kl_k2(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k2 = 0.5 (log pi - log pi_ref)^2: biased, low variance, >= 0 (Schulman, Approximating KL, 2020)."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


@register_kl(KLEstimator.LOW_VAR_KL)
def _kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k3 = exp(d) - d - 1 with d = log pi_ref - log pi, clamped to [-10, 10].

    Unbiased for KL(pi || pi_ref) on samples of pi, low variance, >= 0 because e^d >= 1 + d
    (Schulman, Approximating KL Divergence, 2020; the GRPO KL term, arXiv:2402.03300 eq. 4).
    """
    d = (ref_logprobs - logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    return (torch.exp(d) - d - 1).clamp(-K3_CLAMP, K3_CLAMP)


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, kind: KLEstimator | str) -> Tensor:
    """Per-token KL estimate (B, T) between the policy and the reference, the one dispatch point."""
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and ref_logprobs {tuple(ref_logprobs.shape)} differ"
        )
    return _KL[KLEstimator(kind)](logprobs, ref_logprobs)


# ---------------------------------------------------------------------------- policy loss


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    config: AlgorithmConfig,
    max_response_length: int,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO clipped surrogate with asymmetric clip and optional dual clip (the GRPO policy term).

    Per token, with r = pi / pi_old and A the response's advantage:
        l = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))         (PPO, arXiv:1707.06347)
        l = min(l, -A * dual_clip)  where A < 0                       (dual clip, arXiv:1912.09729)
    then aggregated with ``config.loss_agg``. Shapes: logprobs, old_logprobs, response_mask (B, T);
    advantages (B,) (one per response, broadcast over its tokens) or (B, T).
    """
    if logprobs.shape != old_logprobs.shape or logprobs.shape != response_mask.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)} and "
            f"response_mask {tuple(response_mask.shape)} must all be (B, T)"
        )
    adv = advantages.detach().to(logprobs.dtype)
    adv = adv[:, None].expand_as(logprobs) if adv.dim() == 1 else adv  # (B, T)
    if adv.shape != logprobs.shape:
        raise ValueError(f"advantages must be (B,) or (B, T) for logprobs {tuple(logprobs.shape)}")
    keep = response_mask.bool()  # (B, T)
    mask = keep.to(logprobs.dtype)  # (B, T)
    logprobs, old_logprobs = _zero_padding(logprobs, keep), _zero_padding(old_logprobs.detach(), keep)
    adv = _zero_padding(adv, keep)

    log_ratio = (logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    ratio = torch.exp(log_ratio)  # (B, T)
    unclipped = -adv * ratio  # (B, T)
    clipped = -adv * ratio.clamp(1 - config.clip_low, 1 + config.clip_high)  # (B, T)
    per_token = torch.maximum(unclipped, clipped)  # (B, T) pessimistic bound
    ppo_clipped = clipped > unclipped  # (B, T) the constant branch won: no gradient
    dual_active = torch.zeros_like(ppo_clipped)
    if config.dual_clip is not None:
        cap = -adv * config.dual_clip  # (B, T)
        dual_active = (adv < 0) & (per_token > cap)
        per_token = torch.where(dual_active, cap, per_token)

    loss = aggregate(per_token, mask, config.loss_agg, max_response_length)
    with torch.no_grad():
        metrics = {
            "pg_loss": loss.detach(),
            "clip_frac": masked_mean((ppo_clipped | dual_active).to(mask.dtype), mask),
            "clip_frac_high": masked_mean((ppo_clipped & (adv > 0)).to(mask.dtype), mask),
            "clip_frac_low": masked_mean((ppo_clipped & (adv < 0)).to(mask.dtype), mask),
            "dual_clip_frac": masked_mean(dual_active.to(mask.dtype), mask),
            "approx_kl": masked_mean(ratio - 1 - log_ratio, mask),
            "ratio_mean": masked_mean(ratio, mask),
        }
    return loss, metrics


def total_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    config: AlgorithmConfig,
    max_response_length: int,
    ref_logprobs: Tensor | None = None,
    entropy: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """policy_loss + kl_coef * agg(KL to ref) - entropy_coef * agg(entropy), one scalar to backward.

    ``ref_logprobs`` (B, T) is required when ``config.uses_reference``; ``entropy`` (B, T) when
    ``config.entropy_coef > 0`` (and logged whenever given). The KL and entropy terms use the same
    aggregation as the policy term so their weights mean the same under every ``loss_agg``; their
    logged values are plain per-token means, comparable across aggregations.
    """
    loss, metrics = policy_loss(
        logprobs, old_logprobs, advantages, response_mask, config, max_response_length
    )
    keep = response_mask.bool()  # (B, T)
    mask = keep.to(logprobs.dtype)  # (B, T)
    if config.uses_reference:
        if ref_logprobs is None:
            raise ValueError(f"kl={config.kl} with kl_coef={config.kl_coef} needs ref_logprobs (B, T)")
        kl = kl_penalty(_zero_padding(logprobs, keep), _zero_padding(ref_logprobs.detach(), keep), config.kl)
        loss = loss + config.kl_coef * aggregate(kl, mask, config.loss_agg, max_response_length)
        metrics["kl"] = masked_mean(kl.detach(), mask)
    if config.entropy_coef > 0 and entropy is None:
        raise ValueError(f"entropy_coef={config.entropy_coef} needs per-token entropy (B, T)")
    if entropy is not None:
        entropy = _zero_padding(entropy, keep)  # (B, T)
        if config.entropy_coef > 0:
            loss = loss - config.entropy_coef * aggregate(entropy, mask, config.loss_agg, max_response_length)
        metrics["entropy"] = masked_mean(entropy.detach(), mask)
    metrics["loss"] = loss.detach()
    return loss, metrics
