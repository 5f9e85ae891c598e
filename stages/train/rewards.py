r"""Rewards of one prompt's responses: the model's own majority (MM-UPT) or the hidden label (supervised).

All modes return the same ``GroupReward`` so the trainer has one path. With a frozen teacher
(``reward.teacher: frozen``) the label is the starting policy's vote, taken once before training
(``stages/train/teacher.py``) and passed in as ``teacher``; the step's own vote is then a diagnostic. The vote
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

from mmupt.answers import SymbolicBudget, answers_equivalent, extract_answer
from schemas.train import RewardConfig
from stages.vote import GroupVote, vote_group


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


@dataclass(frozen=True)
class TeacherLabel:
    """A frozen teacher's verdict on one prompt: its pseudo-label, or why it has none."""

    label: str | None
    share: float  # the winner's share of the teacher's votes
    skip_reason: str | None  # stages.vote.SKIP_REASONS, prefixed "teacher_"


def score_group(
    responses: Sequence[str],
    oracle: str | None,
    config: RewardConfig,
    teacher: TeacherLabel | None = None,
    symbolic_budget: SymbolicBudget | None = None,
) -> GroupReward:
    """Reward every response of one prompt. Pure; ``oracle`` only feeds ``label_correct`` in vote mode.

    ``symbolic_budget`` is shared by the prompts of one step (see ``stages.vote.vote_group``).
    """
    vote = vote_group([extract_answer(text) for text in responses], config.vote, symbolic_budget)
    if config.kind == "majority_vote" and config.teacher == "frozen":
        if teacher is None:
            raise ValueError("reward.teacher frozen: score_group needs the prompt's TeacherLabel")
        teacher_correct = None
        if oracle is not None and teacher.label is not None:
            teacher_correct = answers_equivalent(teacher.label, oracle)
        return _against_label(vote, teacher.label, teacher.skip_reason, teacher_correct, config)
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
    # Supervised: the hidden label is the target.
    return _against_label(vote, oracle, None if oracle is not None else "no_oracle", winner_correct, config)


def _against_label(
    vote: GroupVote,
    label: str | None,
    skip_reason: str | None,
    label_correct: bool | None,
    config: RewardConfig,
) -> GroupReward:
    """1 for an answer equivalent to a fixed ``label`` (oracle or frozen teacher), else 0 (unparsable too)."""
    n_train = min(len(vote.answers), config.vote.n_train or len(vote.answers))
    rewards = []
    if label is not None:
        for answer in vote.answers[:n_train]:
            rewards.append(1.0 if answer is not None and answers_equivalent(answer, label) else 0.0)
    return GroupReward(
        rewards=rewards,
        answers=list(vote.answers),
        pseudo_label=label,
        vote_share=vote.vote_share,
        skip_reason=skip_reason if label is None else None,
        unanimous=vote.unanimous,
        n_valid=vote.n_valid,
        label_correct=label_correct,
    )
