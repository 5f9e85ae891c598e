"""Typed records that cross a stage or process boundary: a round's decision, a training step's parts.

``RoundRecord``: what one round decided, in ``round-k/decision.json`` and the summary.

Built by the campaign flow (the baseline, a trained round, a round its premise check stopped),
read back by the next-round path, the stop rule, ``mmupt compare`` and the Prefect report. As a
typed record, a key that one side renames is a validation error on the other, not a silent miss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from schemas.base import StrictModel


class RoundRecord(StrictModel):
    """One round of a campaign (round 0 is the baseline)."""

    round: int = Field(ge=0, description="Round index; 0 is the baseline.")
    model_dir: str = Field(description="The round's model (for a round that did not train: its start).")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Benchmark -> accuracy of this round's model."
    )
    signals: dict[str, float] = Field(
        default_factory=dict, description="Label-free training signals (schemas.metrics.ROUND_SIGNALS)."
    )
    promote: bool = Field(description="Whether the round's model became the champion.")
    decision: str = Field(description="The gate's reason, 'baseline', or why the round did not train.")
    deltas: dict[str, float] = Field(default_factory=dict, description="Benchmark -> change vs the champion.")
    collapse: str | None = Field(None, description="Why the collapse detector flagged the round, if it did.")
    timings: dict[str, float] = Field(default_factory=dict, description="timing_s/<phase> -> seconds.")
    synthesis_note: str | None = Field(None, description="Why the round trained on originals only, if so.")
    mlflow_run_id: str | None = Field(None, description="The round's MLflow run.")
    premise: dict[str, Any] | None = Field(
        None, description="The premise check of the round's starting model (stages.premise.premise_record)."
    )
    premise_spent: bool = Field(
        False, description="The round did not train: its starting model's premise check failed."
    )

    @property
    def is_baseline(self) -> bool:
        return self.round == 0

    @property
    def outcome(self) -> str:
        """``baseline``, ``not trained (premise)``, ``promoted`` or ``rejected``: one word set for the
        CLI, ``mmupt compare``, the Prefect report, MLflow and the registry's ``gate`` tag."""
        if self.is_baseline:
            return "baseline"
        if self.premise_spent:
            return "not trained (premise)"
        return "promoted" if self.promote else "rejected"

    def stored_in(self, campaign_dir: Path) -> RoundRecord:
        """The record as ``decision.json`` and the summary keep it: a model inside the campaign
        folder by its path relative to that folder, so the folder can be moved or renamed."""
        path = Path(self.model_dir)
        if path.is_absolute() and path.is_relative_to(campaign_dir):
            return self.model_copy(update={"model_dir": path.relative_to(campaign_dir).as_posix()})
        return self

    def read_from(self, campaign_dir: Path) -> RoundRecord:
        """The record as the flows use it: a relative model path resolved against the campaign folder."""
        path = Path(self.model_dir)
        return self if path.is_absolute() else self.model_copy(update={"model_dir": str(campaign_dir / path)})


class NothingKept(StrictModel):
    """A synthesis that kept no question: an expected outcome of a round (it trains on originals)."""

    reason: str = Field(description="What the filters dropped, from the synthesis stage's error.")


@dataclass(frozen=True)
class GroupRecord:
    """What one prompt's group contributes to a step's metrics (one per prompt, every rank)."""

    vote_share: float
    skip_reason: str | None
    unanimous: bool
    label_correct: bool | None
    rewards: list[float]
    n_valid: int
    n_responses: int
    zero_std: bool


@dataclass(frozen=True)
class StepRecord:
    """What each training rank sends rank 0 after a step: its rollout rows and the sums behind the
    step's metrics (``stages.train.worker.step_metrics``). A dataclass, not a dict: a field renamed on
    one side is an error at the other, not a metric silently missing from every step."""

    rows: list[dict[str, Any]]  # rollout table rows (schemas.artifacts.ROLLOUTS)
    groups: list[GroupRecord]
    actor: dict[str, float]  # metric -> sum of value * tokens on this rank
    actor_tokens: float
    grad_norms: list[float]
    optimizer_steps: int
    skipped_minibatches: int
    seconds: dict[str, float]  # phase -> seconds on this rank
    response_tokens: int
    truncated: int
    untrainable: int
