"""The math of the GRPO update, free of models and distribution: advantages, losses, log-probs.

- ``advantages``: group-relative advantages (``grpo``, ``dr_grpo``) and rollout-batch diagnostics.
- ``losses``: PPO clipped surrogate, KL estimators, loss aggregation, the total loss.
- ``logprobs``: per-token log-probs and entropies from logits without extra (B, T, V) memory.

Config: ``schemas.grpo.AlgorithmConfig``. Each choice there is a member of a StrEnum of
``schemas.grpo`` (``AdvantageEstimator``, ``LossAgg``, ``KLEstimator``, re-exported here) with one
registry and one dispatch function here.
"""

from mmupt.rl.advantages import compute_advantages, group_stats
from mmupt.rl.logprobs import entropy_from_logits, token_logprobs
from mmupt.rl.losses import aggregate, kl_penalty, masked_mean, policy_loss, total_loss
from schemas.grpo import AdvantageEstimator, KLEstimator, LossAgg

__all__ = [
    "AdvantageEstimator",
    "KLEstimator",
    "LossAgg",
    "aggregate",
    "compute_advantages",
    "entropy_from_logits",
    "group_stats",
    "kl_penalty",
    "masked_mean",
    "policy_loss",
    "token_logprobs",
    "total_loss",
]
