"""Config of the majority-vote self-reward (``stages/vote.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import StrictModel


class VoteConfig(StrictModel):
    """How a prompt's sampled responses vote on a pseudo-label and how they are rewarded.

    The vote share of a class is its votes divided by the responses with an extractable answer
    (``share_of: valid``, as TTRL and SRT do) or by all voting responses (``share_of: all``, the
    conservative rule: one boxed answer among eight truncated generations is not a majority).
    Skipped prompts (tie, low agreement, ...) get no pseudo-label and reward 0 for every response.
    """

    min_vote_ratio: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Skip the prompt when the winner's share (see share_of) is below this.",
    )
    share_of: Literal["valid", "all"] = Field(
        "valid",
        description="The share's denominator: responses with an extractable answer (valid) or all voters (all).",
    )
    min_valid: int = Field(
        1,
        ge=1,
        description="Skip the prompt when fewer voting responses than this have an extractable answer.",
    )
    unparsable_reward: float = Field(
        0.0, description="Reward of a response with no extractable answer (in a labelled prompt)."
    )
    reward: Literal["binary", "soft"] = Field(
        "binary",
        description="binary: 1 if the response's class is the pseudo-label else 0; soft: its class's vote share.",
    )
    n_votes: int | None = Field(
        None, ge=1, description="Vote on the first n_votes responses (by response_index); None: all."
    )
    n_train: int | None = Field(
        None,
        ge=1,
        description="Return rewards for the first n_train responses only (TTRL: vote 64, train 32).",
    )
    skip_unanimous: bool = Field(
        False,
        description="Skip prompts where every voting response gives the same answer (zero GRPO advantage).",
    )
    max_symbolic_pairs: int = Field(
        128,
        ge=0,
        description=(
            "Per prompt, at most this many math-verify comparisons when merging classes; "
            "0: exact rules only (no numeric values, no math-verify)."
        ),
    )
    max_symbolic_seconds: float = Field(
        0.5,
        gt=0.0,
        description="Per prompt, the time budget of its math-verify comparisons (one request); pairs left are not equivalent.",
    )
    max_batch_symbolic_seconds: float = Field(
        5.0,
        ge=0.0,
        description=(
            "Per vote over a table (or training step), the math-verify time of all its prompts together; "
            "once spent, the remaining prompts merge by exact and numeric rules only (rows marked)."
        ),
    )

    @model_validator(mode="after")
    def _train_within_votes(self) -> VoteConfig:
        # Allowed either way, but n_train > n_votes is almost always a typo worth rejecting.
        if self.n_votes is not None and self.n_train is not None and self.n_train > self.n_votes:
            raise ValueError(
                f"n_train ({self.n_train}) exceeds n_votes ({self.n_votes}): rewards would come from "
                "responses that did not vote; raise n_votes or lower n_train"
            )
        return self
