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
VOTE_VALID = "vote/valid_share"
"""Share of the step's responses with a parsable final answer (the voters)."""
ADV_ZERO_STD = "adv/zero_std_share"
"""Share of trained groups whose rewards are all equal: advantage 0, nothing learned from them."""
STEP_TRAINABLE_GROUPS = "step/trainable_groups"
"""Prompts of the step with a pseudo-label (trained)."""
STEP_TRAINABLE_SEQUENCES = "step/trainable_sequences"
"""Responses the update trained on (all ranks)."""
STEP_TRAINED = "step/trained"
"""1.0 when the step updated the model; 0.0 when no group was trainable (update skipped)."""
STEP_OPTIMIZER_STEPS = "step/optimizer_steps"
"""Optimizer steps taken in the step (one per update batch with trainable sequences)."""
STEP_SKIPPED_MINIBATCHES = "step/skipped_minibatches"
"""Update batches of the step with nothing to train."""
ACTOR_LR = "actor/lr"
"""Learning rate after the step."""
ACTOR_GRAD_NORM = "actor/grad_norm"
"""Mean gradient norm over the step's optimizer steps (before clipping)."""
RESPONSE_LENGTH = "response/length_mean"
"""Mean generated tokens per response."""
RESPONSE_TRUNCATED = "response/truncated_share"
"""Share of responses cut at rollout.max_response_length."""
RESPONSE_UNTRAINABLE = "response/untrainable"
"""Rewarded responses left out of the loss: empty, or holding a sampled vision placeholder token."""
TOKENS_PER_S = "perf/tokens_per_s"
"""Generated tokens of all ranks per second of the rollout phase (the slowest rank's time)."""


def skipped_metric(reason: str) -> str:
    """Prompts of the step without a pseudo-label, by reason (stages.vote.SKIP_REASONS): ``vote/skipped/<reason>``."""
    return f"vote/skipped/{reason}"


def actor_metric(name: str) -> str:
    """A token-weighted mean over the step's updates: ``actor/<name>`` for loss, pg_loss, kl, entropy,
    clip_frac, approx_kl, ratio_mean (defined in ``mmupt/rl/losses.py``)."""
    return f"actor/{name}"


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
