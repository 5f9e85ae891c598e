r"""Rewards of one prompt's responses: the model's own majority (MM-UPT) or the hidden label (supervised).

Both modes return the same ``GroupReward`` so the trainer has one path. The vote
(``stages.vote.vote_group``) runs in both: in oracle mode it is a diagnostic (how often the majority
would have been right), in vote mode it *is* the label.

>>> from schemas.train import RewardConfig
>>> g = score_group([r"so \boxed{4}", r"\boxed{4}", r"\boxed{5}"], "4", RewardConfig())
>>> g.pseudo_label, g.rewards, g.label_correct
('4', [1.0, 1.0, 0.0], True)
>>> score_group([r"\boxed{5}", r"\boxed{5}", "no box"], "4", RewardConfig(kind="oracle")).rewards
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mmupt.answers import answers_equivalent, extract_answer
from schemas.train import RewardConfig
from stages.vote import vote_group


@dataclass(frozen=True)
class GroupReward:
    """The reward outcome of one prompt (one GRPO group)."""

    rewards: list[float]  # the first n_train responses; empty when skipped
    answers: list[str | None]  # canonical extracted answer of every response
    pseudo_label: str | None  # the training label: the vote's winner, or the oracle answer
    vote_share: float  # the vote winner's share of the voters (both modes)
    skip_reason: str | None  # why the group trains nothing (stages.vote.SKIP_REASONS, or no_oracle)
    unanimous: bool  # all voters agree
    n_valid: int  # responses with a parsable answer
    label_correct: bool | None  # vote winner vs oracle answer; None without an oracle or a winner

    @property
    def trainable(self) -> bool:
        return self.skip_reason is None


def score_group(responses: Sequence[str], oracle: str | None, config: RewardConfig) -> GroupReward:
    """Reward every response of one prompt. Pure; ``oracle`` only feeds ``label_correct`` in vote mode."""
    vote = vote_group([extract_answer(text) for text in responses], config.vote)
    winner_correct = None
    if oracle is not None and vote.pseudo_label is not None:
        winner_correct = answers_equivalent(vote.pseudo_label, oracle)
    if config.kind == "majority_vote":
        return GroupReward(
            rewards=list(vote.rewards) if vote.skip_reason is None else [],
            answers=list(vote.answers),
            pseudo_label=vote.pseudo_label,
            vote_share=vote.vote_share,
            skip_reason=vote.skip_reason,
            unanimous=vote.unanimous,
            n_valid=vote.n_valid,
            label_correct=winner_correct,
        )
    # Supervised: 1 for an answer equivalent to the oracle, else 0 (unparsable included).
    n_train = min(len(responses), config.vote.n_train or len(responses))
    rewards = []
    if oracle is not None:
        for answer in vote.answers[:n_train]:
            rewards.append(1.0 if answer is not None and answers_equivalent(answer, oracle) else 0.0)
    return GroupReward(
        rewards=rewards,
        answers=list(vote.answers),
        pseudo_label=oracle,
        vote_share=vote.vote_share,
        skip_reason=None if oracle is not None else "no_oracle",
        unanimous=vote.unanimous,
        n_valid=vote.n_valid,
        label_correct=winner_correct,
    )
