"""Config of the GRPO update: advantage estimator, clipped surrogate, loss aggregation, KL, entropy.

The math lives in ``mmupt.rl``. Each of its choices is one StrEnum defined here (``AdvantageEstimator``,
``LossAgg``, ``KLEstimator``), the config field's type and the key of the registry of implementations
in ``mmupt.rl``, so a config value maps to exactly one implementation. They live here, not in
``mmupt.rl``, so the configs import without torch. A YAML value is the plain string (``kl: k1``), and
a StrEnum equals its string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import StrictModel


class AdvantageEstimator(StrEnum):
    """``AlgorithmConfig.advantage``; implementations: ``mmupt.rl.advantages.register_estimator``."""

    GRPO = "grpo"
    DR_GRPO = "dr_grpo"


class LossAgg(StrEnum):
    """``AlgorithmConfig.loss_agg``; implementations: ``mmupt.rl.losses.register_agg``."""

    TOKEN_MEAN = "token_mean"
    SEQ_MEAN_TOKEN_MEAN = "seq_mean_token_mean"
    SEQ_MEAN_TOKEN_SUM_NORM = "seq_mean_token_sum_norm"


class KLEstimator(StrEnum):
    """``AlgorithmConfig.kl``; implementations: ``mmupt.rl.losses.register_kl``."""

    NONE = "none"
    LOW_VAR_KL = "low_var_kl"
    K1 = "k1"
    K2 = "k2"


class AlgorithmConfig(StrictModel):
    """How rewards become a policy-gradient loss (everything between the reward and ``loss.backward``)."""

    # ---- advantage
    advantage: AdvantageEstimator = Field(
        AdvantageEstimator.GRPO,
        description=(
            "How a response's reward becomes its advantage, within its prompt's group. "
            "grpo: (r - mean) / (std + eps), std unbiased (ref: DeepSeekMath, arXiv:2402.03300). "
            "dr_grpo: r - mean, no std division, which removes the bias towards too-easy/too-hard prompts "
            "(ref: Understanding R1-Zero-Like Training, arXiv:2503.20783); pair it with "
            "loss_agg: seq_mean_token_sum_norm to get the full Dr. GRPO objective. "
            "Groups of one response, and groups whose rewards are all equal, get advantage 0."
        ),
    )
    eps: float = Field(
        1e-6,
        description=(
            "Added to the group std before dividing (advantage: grpo only), so a near-unanimous group "
            "does not blow its advantages up. Unused by dr_grpo."
        ),
    )

    # ---- clipped surrogate
    clip_low: float = Field(
        0.2,
        description=(
            "PPO lower clip: the ratio pi/pi_old is clipped at 1 - clip_low for negative advantages. Only "
            "acts when a rollout batch is used for more than one optimizer step (ppo_epochs > 1, or rollout "
            "batch larger than update batch); otherwise the ratio is 1."
        ),
    )
    clip_high: float = Field(
        0.2,
        description=(
            "PPO upper clip: the ratio is clipped at 1 + clip_high for positive advantages. DAPO's "
            "clip-higher uses 0.28 so low-probability tokens can still rise, which keeps entropy from "
            "collapsing (ref: DAPO, arXiv:2503.14476)."
        ),
    )
    dual_clip: float | None = Field(
        None,
        description=(
            "Dual clip: for negative advantages, cap the per-token loss at -A * dual_clip, so a token whose "
            "ratio exploded cannot dominate the step (ref: Ye et al., Mastering Complex Control in MOBA "
            "Games, arXiv:1912.09729). Typical 3.0; must exceed 1 + clip_high. null: off."
        ),
    )

    # ---- aggregation
    loss_agg: LossAgg = Field(
        LossAgg.TOKEN_MEAN,
        description=(
            "How per-token losses (B, T) become one scalar; applies to the policy, KL and entropy terms "
            "alike. "
            "token_mean: sum over all response tokens of the batch / their count, every token weighs the "
            "same (ref: DAPO, arXiv:2503.14476). "
            "seq_mean_token_mean: mean over tokens within each response, then over responses; long "
            "responses get less weight per token (original GRPO, arXiv:2402.03300). "
            "seq_mean_token_sum_norm: sum over tokens of each response / the constant "
            "max_response_length, then mean over responses; no length bias (Dr. GRPO, arXiv:2503.20783)."
        ),
    )

    # ---- regularisers
    kl: KLEstimator = Field(
        KLEstimator.LOW_VAR_KL,
        description=(
            "Estimator of KL(pi || pi_ref) to a frozen reference model, added as a loss term. "
            "low_var_kl: k3 = exp(ref - logp) - (ref - logp) - 1, unbiased, always >= 0, clamped to "
            "[-10, 10] (ref: Schulman, 'Approximating KL Divergence', 2020). k1: logp - ref. "
            "k2: 0.5 (logp - ref)^2. none: no KL term and no reference model (then kl_coef must be 0)."
        ),
    )
    kl_coef: float = Field(
        0.01,
        description=(
            "Weight of the KL term (0.01: the MM-UPT 7B recipe). 0 together with kl: none skips loading "
            "the reference model."
        ),
    )
    entropy_coef: float = Field(
        0.0,
        description=(
            "Weight of the entropy bonus: loss -= entropy_coef * entropy; 0: off. When > 0 the trainer "
            "must compute entropy with gradients, which costs memory."
        ),
    )

    old_logprobs: Literal["recompute", "rollout"] = Field(
        "recompute",
        description=(
            "Where the update's 'old' (behaviour policy) log-probs come from. recompute: one forward pass "
            "over the step's responses before any weight moves (the reference behaviour). rollout: the "
            "log-probs the hf engine recorded while sampling with the same weights, which saves that pass; "
            "equal up to float rounding (KV-cached vs full forward). Not with the vllm backend, whose "
            "kernels differ from the trainer's."
        ),
    )

    # ---- schedule
    ppo_epochs: int = Field(
        1,
        description=(
            "Passes over each rollout batch. > 1 reuses rollouts (more off-policy), which is when "
            "clip_low/clip_high/dual_clip matter."
        ),
    )

    @field_validator("eps")
    @classmethod
    def _eps_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"eps must be > 0 (it keeps the std division finite), got {v}: use e.g. 1e-6")
        return v

    @field_validator("clip_low")
    @classmethod
    def _clip_low_range(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(
                f"clip_low must be in (0, 1) since the lower ratio bound 1 - clip_low must be positive, "
                f"got {v}: use e.g. 0.2"
            )
        return v

    @field_validator("clip_high")
    @classmethod
    def _clip_high_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"clip_high must be > 0, got {v}: use 0.2 (PPO) or 0.28 (DAPO clip-higher)")
        return v

    @field_validator("kl_coef", "entropy_coef")
    @classmethod
    def _coef_non_negative(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError(
                f"must be >= 0 (a negative weight flips the regulariser), got {v}: use 0 to turn it off"
            )
        return v

    @field_validator("ppo_epochs")
    @classmethod
    def _epochs_positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"ppo_epochs must be >= 1, got {v}: use 1 for on-policy updates")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AlgorithmConfig:
        if self.kl == "none" and self.kl_coef > 0:
            raise ValueError(
                f"kl_coef={self.kl_coef} has no effect with kl: none: set kl_coef: 0 to train without a "
                "reference model, or set kl to low_var_kl, k1 or k2 to keep the KL term"
            )
        if self.dual_clip is not None and not self.dual_clip > 1 + self.clip_high:
            raise ValueError(
                f"dual_clip={self.dual_clip} must exceed 1 + clip_high = {1 + self.clip_high} or it caps the "
                "loss inside the trust region: use e.g. dual_clip: 3.0, or null to turn it off"
            )
        return self

    @property
    def uses_reference(self) -> bool:
        """Whether the trainer must load a frozen reference model and compute its log-probs."""
        return self.kl != "none" and self.kl_coef > 0
