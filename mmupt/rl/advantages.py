"""Group-relative advantages: each response's reward compared with the other responses to its prompt.

GRPO has no value network; the baseline is the mean reward of the group of responses sampled
for the same prompt. Groups are given by ``group_index`` (one id per response), never by
position, so groups may be interleaved in the batch.

Conventions (one place, shared by every estimator):
- the group std is the **unbiased** (Bessel-corrected, ``torch.std`` default) std, as TRL's
  GRPOTrainer and DeepSeekMath's reference implementation use;
- a group of one response has no baseline and gets advantage 0 (its unbiased std is undefined);
- a group whose rewards are all equal carries no signal and gets advantage exactly 0 (not
  ``float_noise / eps``);
- statistics are computed in float64 and cast back, so large groups do not lose precision.

Add an estimator as a member of ``AdvantageEstimator`` (``schemas.grpo``, so the config accepts its
name) and its function here with ``@register_estimator(AdvantageEstimator.X)``; ``compute_advantages``
is the only dispatch point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from schemas.grpo import AdvantageEstimator


@dataclass(frozen=True)
class GroupMoments:
    """Per-group statistics of a reward vector, with the map back to responses."""

    inverse: Tensor  # (N,) int64: group slot 0..G-1 of each response
    count: Tensor  # (G,) int64
    mean: Tensor  # (G,) float64
    std: Tensor  # (G,) float64, unbiased; 0 for groups of one
    no_signal: Tensor  # (G,) bool: group of one, or all rewards equal


EstimatorFn = Callable[[Tensor, GroupMoments, float], Tensor]
_ESTIMATORS: dict[AdvantageEstimator, EstimatorFn] = {}


def register_estimator(name: AdvantageEstimator) -> Callable[[EstimatorFn], EstimatorFn]:
    """Register ``fn(rewards (N,) float64, moments, eps) -> advantages (N,) float64`` under ``name``."""

    def wrap(fn: EstimatorFn) -> EstimatorFn:
        if name in _ESTIMATORS:
            raise ValueError(f"advantage estimator {name!r} is registered twice")
        _ESTIMATORS[name] = fn
        return fn

    return wrap


def group_moments(rewards: Tensor, group_index: Tensor) -> GroupMoments:
    """Mean, unbiased std and spread of each group; ``group_index`` ids need not be contiguous."""
    _check_inputs(rewards, group_index)
    r = rewards.detach().to(torch.float64)  # (N,)
    _, inverse = torch.unique(group_index, return_inverse=True)  # (N,)
    n_groups = int(inverse.max().item()) + 1 if inverse.numel() else 0
    count = torch.bincount(inverse, minlength=n_groups)  # (G,)
    mean = torch.zeros(n_groups, dtype=torch.float64, device=r.device).index_add_(0, inverse, r) / count
    sq = torch.zeros_like(mean).index_add_(0, inverse, (r - mean[inverse]) ** 2)  # (G,)
    std = (sq / (count - 1).clamp(min=1)).sqrt()  # (G,) unbiased; 0 where count == 1
    hi = torch.full_like(mean, -torch.inf).scatter_reduce_(0, inverse, r, "amax")
    lo = torch.full_like(mean, torch.inf).scatter_reduce_(0, inverse, r, "amin")
    no_signal = (count < 2) | (hi == lo)  # exact test: float noise in std must not count as spread
    return GroupMoments(inverse=inverse, count=count, mean=mean, std=std, no_signal=no_signal)


@register_estimator(AdvantageEstimator.GRPO)
def _grpo(rewards: Tensor, m: GroupMoments, eps: float) -> Tensor:
    """GRPO outcome advantage A_i = (r_i - mean_g) / (std_g + eps) (DeepSeekMath, arXiv:2402.03300, eq. 3 ff).

    Shapes: rewards (N,), returns (N,).
    """
    return (rewards - m.mean[m.inverse]) / (m.std[m.inverse] + eps)


@register_estimator(AdvantageEstimator.DR_GRPO)
def _dr_grpo(rewards: Tensor, m: GroupMoments, eps: float) -> Tensor:
    """Dr. GRPO advantage A_i = r_i - mean_g, no std division (arXiv:2503.20783, sec. 3.1).

    Dividing by the std up-weights prompts that are nearly always or never solved; dropping it
    removes that difficulty bias. ``eps`` is unused. Shapes: rewards (N,), returns (N,).
    """
    return rewards - m.mean[m.inverse]


def compute_advantages(
    rewards: Tensor,
    group_index: Tensor,
    estimator: AdvantageEstimator | str = AdvantageEstimator.GRPO,
    eps: float = 1e-6,
) -> Tensor:
    """Advantages (N,) for rewards (N,) grouped by ``group_index`` (N,) integer prompt ids.

    Returns the rewards' floating dtype (float32 for integer rewards); no gradient flows through.
    """
    name = AdvantageEstimator(estimator)
    m = group_moments(rewards, group_index)
    adv = _ESTIMATORS[name](rewards.detach().to(torch.float64), m, eps)  # (N,)
    adv = adv.masked_fill(m.no_signal[m.inverse], 0.0)
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    return adv.to(out_dtype)


def group_stats(rewards: Tensor, group_index: Tensor) -> dict[str, float]:
    """Diagnostics of one rollout batch, as plain floats for logging.

    - ``n_groups``: number of prompt groups.
    - ``frac_reward_zero_std``: share of groups with no reward spread (all equal, or a single
      response); these give zero advantage and no gradient.
    - ``reward_mean`` / ``reward_std``: over all responses (std unbiased).
    - ``reward_std_in_group``: mean of the per-group unbiased std over groups of size >= 2.
    """
    m = group_moments(rewards, group_index)
    r = rewards.detach().to(torch.float64)
    multi = m.count >= 2
    n_groups = int(m.count.numel())
    return {
        "n_groups": float(n_groups),
        "frac_reward_zero_std": m.no_signal.double().mean().item() if n_groups else 0.0,
        "reward_mean": r.mean().item() if r.numel() else 0.0,
        "reward_std": r.std().item() if r.numel() > 1 else 0.0,
        "reward_std_in_group": m.std[multi].mean().item() if bool(multi.any()) else 0.0,
    }


def _check_inputs(rewards: Tensor, group_index: Tensor) -> None:
    if rewards.dim() != 1 or group_index.shape != rewards.shape:
        raise ValueError(
            f"rewards and group_index must both be 1-D of equal length, got {tuple(rewards.shape)} "
            f"and {tuple(group_index.shape)}"
        )
    if group_index.is_floating_point() or group_index.is_complex():
        raise ValueError(f"group_index must be an integer tensor of prompt ids, got {group_index.dtype}")
