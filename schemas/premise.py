"""Config and metric names of the premise check (``stages/premise.py``).

MM-UPT's self-reward distils the majority vote of n sampled answers into the model. That only
teaches something when the vote is right more often than the answer the model already gives
(greedy). The premise check measures both on labelled dev rows before any training round, so a
campaign whose model has nothing to distil stops before it spends GPU hours on self-reward.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from schemas.base import StrictModel
from schemas.engine import EngineConfig

# ---------------------------------------------------------------------------- metric names
# The one definition of every premise figure's name: manifest stats, MLflow metrics,
# decision.json, campaign.summary.json and `mmupt compare` all use these.
GREEDY = "premise/greedy"
"""Accuracy of the greedy (T=0) answer: what the model already says."""
SAMPLE = "premise/sample"
"""Mean accuracy of one sampled answer at the configured temperature."""
MAJORITY = "premise/majority"
"""Accuracy of the vote's pseudo-label as training sees it: a tie gives none and counts as wrong."""
MAJORITY_TIE_SPLIT = "premise/majority_tie_split"
"""Majority accuracy with ties broken at random (1/k when the gold answer is among k tied leaders)."""
PASS_AT_N = "premise/pass_at_n"
"""Share of rows with the gold answer among the n samples: what a supervised reward could use."""
WINNER_SHARE = "premise/winner_share"
"""Mean share of the n votes that the winning answer got."""
GAIN = "premise/gain"
"""``MAJORITY - GREEDY``: the premise holds when this is above ``min_gain``."""
ROWS = "premise/rows"
"""Labelled rows measured."""
HOLDS = "premise/holds"
"""1.0 when the premise holds under the campaign's ``min_gain``, else 0.0."""

FIGURES: tuple[str, ...] = (GREEDY, SAMPLE, MAJORITY, MAJORITY_TIE_SPLIT, PASS_AT_N, WINNER_SHARE, GAIN)
"""The accuracy-like figures, in display order (each in [0, 1] except ``GAIN``)."""


VERDICT_FIELDS = {"min_gain", "require_premise", "recheck"}
"""Fields that decide what a measured premise means (or when one is measured), not what is measured."""


def column(metric: str) -> str:
    """The column of the ``premise`` table holding ``metric`` (``premise/greedy`` -> ``greedy``)."""
    return metric.removeprefix("premise/")


class PremiseConfig(StrictModel):
    """How the premise (majority@n beats greedy) is measured, and what a failed premise does."""

    data: Path | None = Field(
        None,
        description=(
            "Labelled dev set: a samples artifact / Parquet with `oracle_answer`, or a world artifact "
            "(its `split`). null: the embedded world's `split`; a campaign with neither skips the check."
        ),
    )
    split: str = Field("dev", description="World split to measure on (when the rows come from a world).")
    rows: int = Field(200, ge=1, description="Measure on the first N labelled rows.")
    n: int = Field(8, ge=2, description="Samples per row that vote (as the training rollouts do).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the n voting samples.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus mass of the voting samples.")
    max_new_tokens: int = Field(
        64, ge=1, description="Generation budget of every answer (greedy and sampled)."
    )
    seed: int = Field(0, description="Sampling seed.")
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Backend that generates.")
    min_gain: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="The premise holds when majority@n - greedy > min_gain (absolute accuracy).",
    )
    require_premise: bool = Field(
        True,
        description=(
            "Stop the campaign before any training round when the premise fails; false: warn and train anyway."
        ),
    )
    recheck: Literal["never", "warn", "stop"] = Field(
        "never",
        description=(
            "Re-measure the premise of every later round's starting model (the last promoted one) before "
            "the round trains. A round teaches its labels to the model, so the next round's votes may no "
            "longer beat its greedy answers. never: round 0 only; warn: measure, log and train anyway; "
            "stop: a failed premise ends the campaign before that round trains."
        ),
    )

    def config_hash(self) -> str:
        """Cache identity of the measurement only: ``min_gain`` and ``require_premise`` change the
        verdict (computed from the artifact's figures), not the figures, so they must not re-run them."""
        payload = json.dumps(self.model_dump(mode="json", exclude=VERDICT_FIELDS), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
