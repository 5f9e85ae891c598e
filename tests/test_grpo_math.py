"""GRPO math against hand-computed values: advantages, clipped surrogate, aggregations, KL, log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from mmupt.errors import ConfigError
from mmupt.rl import (
    AdvantageEstimator,
    KLEstimator,
    LossAgg,
    advantages,
    aggregate,
    compute_advantages,
    entropy_from_logits,
    group_stats,
    kl_penalty,
    losses,
    policy_loss,
    token_logprobs,
    total_loss,
)
from schemas.base import validate_config
from schemas.grpo import AlgorithmConfig

SQRT3 = math.sqrt(3.0)


def _logprobs_for_ratios(ratios: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logprobs leaf requiring grad, old_logprobs) whose exp-difference is ``ratios``."""
    r = torch.tensor(ratios, dtype=torch.float64)
    old = torch.full_like(r, math.log(0.1))
    return (old + r.log()).requires_grad_(True), old


# ---------------------------------------------------------------------------- config


def test_every_choice_has_an_implementation() -> None:
    """A member added to a config Enum (schemas.grpo) without its registered function fails here, not mid-job."""
    assert set(advantages._ESTIMATORS) == set(AdvantageEstimator)
    assert set(losses._AGGREGATORS) == set(LossAgg)
    assert set(losses._KL) == set(KLEstimator)


def test_config_choices_are_the_enums_and_dump_as_strings() -> None:
    cfg = validate_config(
        AlgorithmConfig, {"advantage": "dr_grpo", "loss_agg": "seq_mean_token_mean", "kl": "k1"}
    )
    assert (cfg.advantage, cfg.loss_agg, cfg.kl) == (
        AdvantageEstimator.DR_GRPO,
        LossAgg.SEQ_MEAN_TOKEN_MEAN,
        KLEstimator.K1,
    )
    assert cfg.kl == "k1" and AlgorithmConfig().kl is KLEstimator.LOW_VAR_KL
    dumped = cfg.model_dump(mode="json")
    assert [type(dumped[k]) for k in ("advantage", "loss_agg", "kl")] == [str, str, str]
    assert (dumped["advantage"], dumped["loss_agg"], dumped["kl"]) == ("dr_grpo", "seq_mean_token_mean", "k1")


def test_config_defaults_and_reference_flag() -> None:
    cfg = AlgorithmConfig()
    assert (cfg.advantage, cfg.clip_low, cfg.clip_high, cfg.kl, cfg.kl_coef) == (
        "grpo",
        0.2,
        0.2,
        "low_var_kl",
        0.01,
    )
    assert cfg.uses_reference
    assert not AlgorithmConfig(kl="none", kl_coef=0.0).uses_reference
    assert not AlgorithmConfig(kl="k1", kl_coef=0.0).uses_reference


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"clip_low": 1.0}, "clip_low must be in (0, 1)"),
        ({"clip_high": 0.0}, "clip_high must be > 0"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"kl": "none"}, "set kl_coef: 0"),
        ({"dual_clip": 1.1, "clip_high": 0.28}, "must exceed 1 + clip_high"),
        ({"kl_coef": -0.1}, "must be >= 0"),
        ({"ppo_epochs": 0}, "ppo_epochs must be >= 1"),
        ({"loss_agg": "seq_mean"}, "loss_agg"),
        ({"kl_cof": 0.1}, "unknown key"),
    ],
)
def test_config_rejects_with_actionable_message(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match="algo.yaml") as err:
        validate_config(AlgorithmConfig, data, "algo.yaml")
    assert needle in str(err.value)


# ---------------------------------------------------------------------------- advantages

# Two interleaved groups with non-contiguous ids: group 7 = positions 0, 2, 4; group 3 = 1, 3, 5.
REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.5, 1.0, 1.0])
GROUPS = torch.tensor([7, 3, 7, 3, 7, 3])
# group 7: [1, 0, 1], mean 2/3, unbiased var (1/9 + 4/9 + 1/9) / 2 = 1/3, std 1/sqrt(3)
# group 3: [0, .5, 1], mean 1/2, unbiased var (1/4 + 0 + 1/4) / 2 = 1/4, std 1/2


def test_grpo_advantages_interleaved_groups() -> None:
    adv = compute_advantages(REWARDS, GROUPS, AdvantageEstimator.GRPO, eps=0.0)
    expected = torch.tensor([SQRT3 / 3, -1.0, -2 * SQRT3 / 3, 0.0, SQRT3 / 3, 1.0])
    torch.testing.assert_close(adv, expected)
    assert adv.dtype == torch.float32


def test_grpo_eps_is_added_to_std() -> None:
    adv = compute_advantages(REWARDS, GROUPS, "grpo", eps=0.5)  # group 3: d / (0.5 + 0.5)
    torch.testing.assert_close(adv[[1, 3, 5]], torch.tensor([-0.5, 0.0, 0.5]))


def test_dr_grpo_advantages_interleaved_groups() -> None:
    adv = compute_advantages(REWARDS, GROUPS, "dr_grpo", eps=1e-6)
    expected = torch.tensor([1 / 3, -0.5, -2 / 3, 0.0, 1 / 3, 0.5])
    torch.testing.assert_close(adv, expected)


@pytest.mark.parametrize("estimator", list(AdvantageEstimator))
def test_singleton_and_unanimous_groups_get_exactly_zero(estimator: AdvantageEstimator) -> None:
    # group 0: [1, 0] (std sqrt(.5)); group 5: one response; group 2: 0.1 three times (float noise in mean)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.1, 0.1, 0.1])
    groups = torch.tensor([0, 0, 5, 2, 2, 2])
    adv = compute_advantages(rewards, groups, estimator, eps=1e-6)
    assert torch.equal(adv[2:], torch.zeros(4))
    expected = 0.5 / math.sqrt(0.5) if estimator is AdvantageEstimator.GRPO else 0.5
    torch.testing.assert_close(adv[:2], torch.tensor([expected, -expected]), atol=1e-5, rtol=1e-5)


def test_advantages_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="integer"):
        compute_advantages(REWARDS, GROUPS.float())
    with pytest.raises(ValueError, match="equal length"):
        compute_advantages(REWARDS, GROUPS[:3])
    with pytest.raises(ValueError):
        compute_advantages(REWARDS, GROUPS, "ppo")


def test_group_stats() -> None:
    rewards = torch.cat([REWARDS, torch.tensor([1.0, 1.0])])
    groups = torch.cat([GROUPS, torch.tensor([9, 9])])  # group 9 unanimous
    stats = group_stats(rewards, groups)
    assert stats["n_groups"] == 3.0
    assert stats["frac_reward_zero_std"] == pytest.approx(1 / 3)
    assert stats["reward_mean"] == pytest.approx(5.5 / 8)
    assert stats["reward_std"] == pytest.approx(rewards.double().std().item())
    assert stats["reward_std_in_group"] == pytest.approx((1 / SQRT3 + 0.5 + 0.0) / 3)


# ---------------------------------------------------------------------------- aggregation

VALUES = torch.tensor(
    [[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0], [5.0, 6.0, 0.0, 0.0], [7.0, 7.0, 7.0, 7.0]]
)
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])  # lengths 3, 1, 2, 0


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("token_mean", 21 / 6),  # (1+2+3+4+5+6) / 6 tokens
        ("seq_mean_token_mean", (2.0 + 4.0 + 5.5) / 3),  # the empty row is left out
        ("seq_mean_token_sum_norm", (6 + 4 + 11) / (4 * 5)),  # 4 rows x L = 5
    ],
)
def test_aggregations_unequal_lengths(agg: str, expected: float) -> None:
    assert aggregate(VALUES, MASK, agg, max_response_length=5).item() == pytest.approx(expected)


def test_sum_norm_rejects_short_max_length() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        aggregate(VALUES, MASK, LossAgg.SEQ_MEAN_TOKEN_SUM_NORM, max_response_length=3)


# ---------------------------------------------------------------------------- policy loss


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("token_mean", -(2 * 3 - 1) / 4),  # token-weighted mean advantage over 4 tokens
        ("seq_mean_token_mean", -(2 - 1) / 2),
        ("seq_mean_token_sum_norm", -(2 * 3 - 1) / (2 * 4)),  # L = 4
    ],
)
def test_ratio_one_gives_minus_mean_advantage(agg: str, expected: float) -> None:
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.1, -9.0, -9.0, -9.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    cfg = AlgorithmConfig(loss_agg=agg)
    loss, metrics = policy_loss(logprobs, logprobs.detach(), torch.tensor([2.0, -1.0]), mask, cfg, 4)
    assert loss.item() == pytest.approx(expected)
    assert metrics["clip_frac"].item() == 0.0
    assert metrics["ratio_mean"].item() == pytest.approx(1.0)
    assert metrics["approx_kl"].item() == pytest.approx(0.0)


def test_asymmetric_clip_values_gradients_and_fractions() -> None:
    # clip range [0.8, 1.28] (DAPO clip-higher). Row 0: A = +1; row 1: A = -1.
    logprobs, old = _logprobs_for_ratios([[1.5, 1.25, 0.5], [0.5, 1.5, 0.75]])
    cfg = AlgorithmConfig(clip_low=0.2, clip_high=0.28)
    loss, metrics = policy_loss(logprobs, old, torch.tensor([1.0, -1.0]), torch.ones(2, 3), cfg, 3)
    # per token: max(-A r, -A clip(r)) -> row 0: [-1.28, -1.25, -0.5]; row 1: [0.8, 1.5, 0.8]
    assert loss.item() == pytest.approx((-1.28 - 1.25 - 0.5 + 0.8 + 1.5 + 0.8) / 6)
    loss.backward()
    # d(-A r)/dlogp = -A r on unclipped tokens, 0 where clipped; / 6 tokens
    expected_grad = torch.tensor([[0.0, -1.25, -0.5], [0.0, 1.5, 0.0]], dtype=torch.float64) / 6
    torch.testing.assert_close(logprobs.grad, expected_grad)
    assert metrics["clip_frac"].item() == pytest.approx(3 / 6)
    assert metrics["clip_frac_high"].item() == pytest.approx(1 / 6)  # r = 1.5, A > 0
    assert metrics["clip_frac_low"].item() == pytest.approx(2 / 6)  # r = 0.5, 0.75, A < 0
    assert metrics["ratio_mean"].item() == pytest.approx(1.0)  # (1.5+1.25+.5+.5+1.5+.75) / 6
    r = torch.tensor([1.5, 1.25, 0.5, 0.5, 1.5, 0.75], dtype=torch.float64)
    assert metrics["approx_kl"].item() == pytest.approx((r - 1 - r.log()).mean().item())


def test_symmetric_clip_cuts_where_clip_higher_does_not() -> None:
    logprobs, old = _logprobs_for_ratios([[1.25]])
    loss, metrics = policy_loss(logprobs, old, torch.tensor([1.0]), torch.ones(1, 1), AlgorithmConfig(), 1)
    assert loss.item() == pytest.approx(-1.2)
    assert metrics["clip_frac_high"].item() == 1.0
    loss.backward()
    assert logprobs.grad.item() == 0.0


def test_dual_clip_caps_negative_advantage_only() -> None:
    logprobs, old = _logprobs_for_ratios([[4.0, 2.0], [4.0, 2.0]])
    adv, mask = torch.tensor([-1.0, 1.0]), torch.ones(2, 2)
    loss, metrics = policy_loss(logprobs, old, adv, mask, AlgorithmConfig(dual_clip=3.0), 2)
    # row 0 (A < 0): [min(4, 3), 2]; row 1 (A > 0): [-1.2, -1.2] (PPO clip, untouched by dual)
    assert loss.item() == pytest.approx((3.0 + 2.0 - 1.2 - 1.2) / 4)
    loss.backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([[0.0, 2.0 / 4], [0.0, 0.0]], dtype=torch.float64))
    assert metrics["dual_clip_frac"].item() == pytest.approx(1 / 4)
    assert metrics["clip_frac"].item() == pytest.approx(3 / 4)
    plain, _ = policy_loss(logprobs, old, adv, mask, AlgorithmConfig(), 2)
    assert plain.item() == pytest.approx((4.0 + 2.0 - 1.2 - 1.2) / 4)


# ---------------------------------------------------------------------------- KL


def test_kl_estimators_hand_values() -> None:
    logp = torch.tensor([[-1.0, -2.0, -30.0]])
    ref = torch.tensor([[-1.5, -1.0, -10.0]])  # d = ref - logp = [-0.5, 1, 20]
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), torch.tensor([[0.5, -1.0, -20.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), torch.tensor([[0.125, 0.5, 200.0]]))
    k3 = torch.tensor([[math.exp(-0.5) + 0.5 - 1, math.e - 2, 10.0]])  # last: e^20 - 21 clamped to 10
    torch.testing.assert_close(kl_penalty(logp, ref, KLEstimator.LOW_VAR_KL), k3)
    assert torch.equal(kl_penalty(logp, ref, "none"), torch.zeros(1, 3))


def test_low_var_kl_non_negative_and_zero_at_equality() -> None:
    gen = torch.Generator().manual_seed(0)
    logp, ref = -torch.rand(64, 32, generator=gen) * 5, -torch.rand(64, 32, generator=gen) * 5
    assert (kl_penalty(logp, ref, "low_var_kl") >= 0).all()
    assert torch.equal(kl_penalty(logp, logp, "low_var_kl"), torch.zeros(64, 32))


# ---------------------------------------------------------------------------- total loss + gradients


def test_total_loss_combines_terms() -> None:
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0]])
    entropy = torch.tensor([[0.5, 1.5]])
    cfg = AlgorithmConfig(kl="low_var_kl", kl_coef=0.1, entropy_coef=0.01)
    loss, m = total_loss(logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 2), cfg, 2, ref, entropy)
    kl_mean = (math.exp(-0.5) + 0.5 - 1 + math.e - 2) / 2
    assert loss.item() == pytest.approx(-1.0 + 0.1 * kl_mean - 0.01 * 1.0)
    assert m["kl"].item() == pytest.approx(kl_mean)
    assert m["entropy"].item() == pytest.approx(1.0)
    assert m["loss"].item() == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="ref_logprobs"):
        total_loss(logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 2), cfg, 2, None, entropy)
    off = AlgorithmConfig(kl="none", kl_coef=0.0)
    loss_off, m_off = total_loss(logp, logp.detach(), torch.tensor([1.0]), torch.ones(1, 2), off, 2)
    assert loss_off.item() == pytest.approx(-1.0)
    assert "kl" not in m_off and "entropy" not in m_off


@pytest.mark.parametrize("agg", list(LossAgg))
def test_gradients_only_on_response_tokens(agg: LossAgg) -> None:
    gen = torch.Generator().manual_seed(1)
    logp = (-torch.rand(3, 5, generator=gen) * 3).requires_grad_(True)
    old = logp.detach().clone()
    old[0, 4] = math.nan  # garbage at a padded position must not poison the loss or its gradient
    ref = logp.detach() - 0.3
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    cfg = AlgorithmConfig(loss_agg=agg.value)
    loss, _ = total_loss(logp, old, torch.tensor([0.7, -1.2, 0.4]), mask, cfg, 5, ref)
    assert torch.isfinite(loss)
    loss.backward()
    assert (logp.grad[mask.bool()] != 0).all()
    assert (logp.grad[~mask.bool()] == 0).all()


# ---------------------------------------------------------------------------- log-probs and entropy


def _naive_logprobs(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return torch.log_softmax(logits / temperature, -1).gather(-1, labels[..., None]).squeeze(-1)


def test_token_logprobs_match_naive_values_and_grads() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 5, 11, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    upstream = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    for temperature in (1.0, 0.7):
        a = logits.clone().requires_grad_(True)
        b = logits.clone().requires_grad_(True)
        ours = token_logprobs(a, labels, temperature, chunk_size=2)  # chunks split T = 5 into 2 + 2 + 1
        ref = _naive_logprobs(b, labels, temperature)
        torch.testing.assert_close(ours, ref)
        (ours * upstream).sum().backward()
        (ref * upstream).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_token_logprobs_gradcheck_and_strided_input() -> None:
    gen = torch.Generator().manual_seed(3)
    full = torch.randn(2, 4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 6, (2, 3), generator=gen)
    logits = full[:, :-1]  # the usual shifted, non-contiguous view
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, labels, 0.9, chunk_size=2), (logits,))
    torch.testing.assert_close(token_logprobs(logits, labels), _naive_logprobs(logits, labels))


def test_token_logprobs_ignored_labels_and_bf16() -> None:
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(1, 3, 7, generator=gen).to(torch.bfloat16).requires_grad_(True)
    labels = torch.tensor([[2, -100, 5]])
    out = token_logprobs(logits, labels)
    assert out.dtype == torch.float32
    assert out[0, 1].item() == 0.0
    expected = _naive_logprobs(logits.detach().float(), labels.clamp(min=0))
    torch.testing.assert_close(out[0, [0, 2]], expected[0, [0, 2]])
    out.sum().backward()
    assert (logits.grad[0, 1] == 0).all() and (logits.grad[0, 0] != 0).any()


def test_entropy_matches_naive_and_gradcheck() -> None:
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 5, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(logits / 0.8, -1)
    naive = -(p * torch.log_softmax(logits / 0.8, -1)).sum(-1)
    torch.testing.assert_close(entropy_from_logits(logits, 0.8, chunk_size=3), naive)
    assert torch.autograd.gradcheck(lambda x: entropy_from_logits(x, 0.8, chunk_size=3), (logits,))
    uniform = torch.zeros(1, 2, 16)
    torch.testing.assert_close(entropy_from_logits(uniform), torch.full((1, 2), math.log(16)))
