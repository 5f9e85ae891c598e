"""Names of the metrics that cross a stage boundary, each defined once.

The trainer writes them per step (``metrics.jsonl``, the stage's MLflow run); the gate and the
collapse detector read them back, and the campaign's MLflow run and ``mmupt compare`` chart them
by round. With string literals in each of those places, a renamed metric silently reads nothing;
with these names, it fails at import.
"""

from __future__ import annotations

# ---- per training step (stages/train/worker.py::step_metrics); a round's signal is the mean of its last steps
REWARD_MEAN = "reward/mean"
"""Mean reward of the step's responses on labelled prompts (agreement with the pseudo-label)."""
VOTE_SHARE = "vote/share_mean"
"""Mean share of the winning answer per prompt: 1.0 means every response agreed (saturation)."""
VOTE_SKIPPED = "vote/skipped_share"
"""Share of the step's prompts that got no pseudo-label (tie, low agreement, too few valid)."""
VOTE_UNANIMOUS = "vote/unanimous_share"
"""Share of prompts whose responses all gave one answer (no learning signal in GRPO)."""
LABEL_ACCURACY = "label/accuracy"
"""Pseudo-label accuracy against the hidden labels: a diagnostic, never read by training."""
KL = "actor/kl"
"""KL of the policy to the reference, per token."""

# ---- once per job: the frozen round-level teacher (stages/train/teacher.py)
TEACHER_PROMPTS = "teacher/prompts"
TEACHER_LABELLED_SHARE = "teacher/labelled_share"
TEACHER_LABEL_ACCURACY = "teacher/label_accuracy"

# ---- per round, on the campaign's MLflow run (step = round)
GATE_PROMOTED = "gate/promoted"
"""1.0 when the round's model was promoted to champion, else 0.0."""

ROUND_SIGNALS = (VOTE_SHARE, LABEL_ACCURACY, REWARD_MEAN, VOTE_SKIPPED, VOTE_UNANIMOUS)
"""The training signals a round reports (means over its last steps); the collapse detector reads them."""

TRAINING_SUMMARY = (REWARD_MEAN, VOTE_SHARE, VOTE_SKIPPED, LABEL_ACCURACY, KL)
"""What a training job's summary and its curves show, first step to last."""


def eval_metric(benchmark: str) -> str:
    """A benchmark's gate score on the round and campaign runs: ``eval/<benchmark>``."""
    return f"eval/{benchmark}"


def timing_metric(phase: str) -> str:
    """Seconds spent in a phase (of a round, or of a training step): ``timing_s/<phase>``."""
    return f"timing_s/{phase}"
