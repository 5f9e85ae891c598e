"""Config of the supervised warm start ("first SFT")."""

from __future__ import annotations

from pydantic import Field

from schemas.base import StrictModel


class SFTConfig(StrictModel):
    """Teacher-forced fine-tuning on labelled rationales, then a held-out accuracy check."""

    epochs: float = Field(2.0, gt=0, description="Passes over the labelled split (fractions allowed).")
    batch_size: int = Field(16, ge=1, description="Sequences per optimiser step.")
    learning_rate: float = Field(
        2e-3, gt=0, description="Peak AdamW learning rate (tiny models train from scratch)."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(20, ge=0, description="Linear warm-up steps, then cosine decay to 10%.")
    grad_clip: float = Field(1.0, gt=0, description="Max global gradient norm.")
    question_writing_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description=(
            "Extra examples, as a share of the labelled rows, that teach the synthesis task (write a new "
            "question about the image, in-context or direct) from the world's sibling questions. 0 disables; "
            "without them a from-scratch model cannot synthesize."
        ),
    )
    max_rows: int | None = Field(None, ge=1, description="Use at most this many labelled rows (quick runs).")
    eval_rows: int = Field(200, ge=1, description="Held-out rows for the greedy accuracy check.")
    eval_max_new_tokens: int = Field(48, ge=1, description="Generation budget of the accuracy check.")
    seed: int = Field(0, description="Shuffling and initialisation seed.")
    device: str = Field("cpu", description="torch device.")
