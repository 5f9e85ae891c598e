"""Config of the embedded visual-math world (``stages/world.py``).

The world is a seeded generator of simple rendered scenes with exact answers. It exists so the
whole MM-UPT loop (SFT -> unsupervised GRPO -> evaluation) can run on a CPU with a tiny model:
every knob here trades learnability against headroom for self-improvement.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from schemas.base import StrictModel

TaskName = Literal["count", "total", "compare", "sum", "max"]
ALL_TASKS: tuple[TaskName, ...] = ("count", "total", "compare", "sum", "max")

PATCH_GRID = 28
"""Qwen2.5-VL sees 14-px patches merged 2x2: a side that is a multiple of 28 is never resized."""


class WorldConfig(StrictModel):
    """What the world generates: how many rows per split, which tasks, how hard."""

    seed: int = Field(0, description="Master seed; every example is a pure function of (seed, split, index).")
    image_size: int = Field(
        112,
        ge=112,
        le=1008,
        description="Square image side in pixels: a multiple of 28 (the VL processor never rescales it), at least 112 (every difficulty fits).",
    )
    n_sft: int = Field(2000, ge=0, description="Labelled rows for the supervised warm-up (split 'sft').")
    n_heldout: int = Field(
        200, ge=0, description="Labelled evaluation rows (split 'heldout'); never trained on."
    )
    n_unlabeled: int = Field(
        400,
        ge=0,
        description="Rows for unsupervised post-training (split 'unlabeled'); ingest hides their answers.",
    )
    difficulty: int = Field(
        1,
        ge=1,
        le=3,
        description="1..3: more objects and distractors, smaller objects, closer comparisons, wider digit range.",
    )
    tasks: list[TaskName] = Field(
        default_factory=lambda: list(ALL_TASKS),
        min_length=1,
        description="Task families to draw from, assigned round-robin by row index (count, total, compare, sum, max).",
    )
    multiple_choice_share: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Share of numeric-answer rows posed as A-D multiple choice (compare is always multiple choice).",
    )

    @field_validator("image_size")
    @classmethod
    def _multiple_of_patch_grid(cls, value: int) -> int:
        if value % PATCH_GRID:
            raise ValueError(f"must be a multiple of {PATCH_GRID} (e.g. 112, 140, 168), got {value}")
        return value

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value: list[TaskName]) -> list[TaskName]:
        if len(set(value)) != len(value):
            raise ValueError(f"tasks must not repeat, got {value}")
        return value
