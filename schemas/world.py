"""Config of the embedded visual-math world (``stages/world.py``).

The world is a seeded generator of simple rendered scenes with exact answers. It exists so the
whole MM-UPT loop (SFT -> unsupervised GRPO -> evaluation) can run on a CPU with a tiny model:
every knob here trades learnability against headroom for self-improvement.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import StrictModel

TaskName = Literal["count", "total", "compare", "sum", "max", "diff"]
WorldVersion = Literal[1, 2]
TASKS_BY_VERSION: dict[int, tuple[TaskName, ...]] = {
    1: ("count", "total", "compare", "sum", "max"),
    2: ("count", "total", "compare", "sum", "max", "diff"),
}
DEFAULT_TASKS: dict[int, tuple[TaskName, ...]] = {
    1: TASKS_BY_VERSION[1],
    # v2 compare answers with a colour word copied from the question; the demo-sized model does not
    # learn that copy in a short SFT (0.26 held-out after 4 epochs, below the 0.5 of guessing), so
    # it is available by name but not drawn by default.
    2: ("count", "total", "sum", "max", "diff"),
}
ALL_TASKS: tuple[TaskName, ...] = TASKS_BY_VERSION[1]

PATCH_GRID = 28
"""Qwen2.5-VL sees 14-px patches merged 2x2: a side that is a multiple of 28 is never resized."""


class WorldConfig(StrictModel):
    """What the world generates: how many rows per split, which tasks, how hard."""

    seed: int = Field(0, description="Master seed; every example is a pure function of (seed, split, index).")
    version: WorldVersion = Field(
        2,
        description=(
            "2: every task's SFT rationale picks one of >= 3 decompositions that write their intermediate "
            "results, so sampled answers err independently and the majority vote beats greedy (MM-UPT's "
            "premise); compare is free-form (a colour) and diff is added. 1: one templated step per task, "
            "the control in which the vote equals greedy and self-reward collapses."
        ),
    )
    image_size: int = Field(
        112,
        ge=112,
        le=1008,
        description=(
            "Square image side in pixels, a multiple of 28 so the VL processor never rescales it; "
            "112 is the smallest side that every difficulty fits in."
        ),
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
    n_dev: int = Field(
        200,
        ge=0,
        description=(
            "Labelled rows for diagnostics and the gate (split 'dev': the premise check, benchmark "
            "world-dev); never trained on and never the reported test rows. Generated last, so no "
            "other split changes with it."
        ),
    )
    difficulty: int = Field(
        1,
        ge=1,
        le=3,
        description="Higher: more objects and distractors, smaller objects, closer comparisons, wider digit range.",
    )
    tasks: list[TaskName] | None = Field(
        None,
        min_length=1,
        description=(
            "Task families to draw from, assigned round-robin by row index; null: the version's defaults "
            "(v1: count, total, compare, sum, max; v2: count, total, sum, max, diff; v2 also has compare)."
        ),
    )
    multiple_choice_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Share of numeric-answer rows posed as A-D multiple choice (v1 compare is always multiple choice). "
            "null: 0.3 for v1, 0.0 for v2."
        ),
    )

    @field_validator("image_size")
    @classmethod
    def _multiple_of_patch_grid(cls, value: int) -> int:
        if value % PATCH_GRID:
            raise ValueError(f"must be a multiple of {PATCH_GRID} (e.g. 112, 140, 168), got {value}")
        return value

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, value: list[TaskName] | None) -> list[TaskName] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"tasks must not repeat, got {value}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _version_defaults(cls, data: Any) -> Any:
        """Fill ``tasks`` and ``multiple_choice_share`` from the version (assigning after would re-validate)."""
        if not isinstance(data, dict):
            return data
        version = data.get("version", 2)
        if version not in TASKS_BY_VERSION:
            return data  # the field's own validation names the key
        data = dict(data)
        if data.get("tasks") is None:
            data["tasks"] = list(DEFAULT_TASKS[version])
        if data.get("multiple_choice_share") is None:
            data["multiple_choice_share"] = 0.3 if version == 1 else 0.0
        return data

    @model_validator(mode="after")
    def _tasks_of_version(self) -> WorldConfig:
        known = TASKS_BY_VERSION[self.version]
        unknown = [t for t in self.tasks or [] if t not in known]
        if unknown:
            raise ValueError(
                f"tasks {unknown} do not exist in world version {self.version} (it has {list(known)}); "
                "remove them or set version: 2"
            )
        if self.version == 2 and self.multiple_choice_share:
            raise ValueError(
                "world version 2 poses every question free-form (its rationales have no option step): set "
                "multiple_choice_share: 0, or version: 1 for multiple-choice rows"
            )
        return self
