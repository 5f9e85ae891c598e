"""Config of a continual campaign: rounds of synthesize -> mix -> train -> evaluate -> gate.

The embedded default fills ``embedded`` (world + tiny model + first SFT) and needs nothing else;
a real campaign sets ``start_model`` and ``sources`` instead and leaves ``embedded`` null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from schemas.base import StrictModel
from schemas.demo import EmbeddedConfig
from schemas.evaluate import EvalConfig
from schemas.ingest import IngestConfig
from schemas.premise import PremiseConfig
from schemas.synthesize import SynthesizeConfig
from schemas.train import TrainConfig

WORLD_BENCHMARKS: tuple[str, ...] = ("world", "world-dev")
"""Benchmarks that read the campaign's own embedded world (heldout and dev splits)."""

ModelRegistry = Literal["copy", "reference", "off"]
"""How a round's model reaches the MLflow registry (``mmupt.tracking.register_model``)."""


class SourceConfig(StrictModel):
    """Unlabeled data to ingest once at the start of the campaign."""

    paths: list[Path] = Field(min_length=1, description="Files or folders, in any supported layout.")
    layout: str | None = Field(
        None, description="Force a layout (see `mmupt ingest --help`); auto-detected if null."
    )


class BenchmarkSpec(StrictModel):
    """One benchmark of the evaluation suite."""

    name: str = Field(
        description=(
            "Benchmark name (world, world-dev, mathvista, mathverse, mathvision, wemath, chartqa, iconqa)."
        )
    )
    data: Path | None = Field(
        None, description="Local data path; null for `world` / `world-dev` (the campaign's own world)."
    )
    limit: int | None = Field(None, ge=1, description="Evaluate the first N items only (quick runs).")
    gate_metric: str = Field(
        "accuracy", description="The metric of this benchmark the gate compares across rounds."
    )


class GateConfig(StrictModel):
    """When a round's model is promoted to start the next round."""

    tolerance: float = Field(
        0.02,
        ge=0,
        description="A round is rejected if any gated benchmark drops by more than this (absolute).",
    )
    max_consecutive_rejections: int = Field(
        2, ge=1, description="Stop the campaign after this many rejected rounds."
    )
    benchmarks: list[str] | None = Field(
        None,
        min_length=1,
        description=(
            "Benchmarks of the suite the gate decides on (e.g. [world-dev], so promotion never looks at "
            "the reported test rows); the others are still evaluated and reported. null: the whole suite."
        ),
    )


class CollapseConfig(StrictModel):
    """Stop signals for self-reward collapse (TTRL reports accuracy rising, then falling)."""

    max_vote_share: float = Field(
        0.98, gt=0, le=1, description="Mean vote share above this means answers no longer differ: collapse."
    )
    max_probe_drop: float = Field(
        0.1,
        ge=0,
        description="Stop when pseudo-label accuracy on the hidden probe falls this far below its best.",
    )


class RoundWindow(StrictModel):
    """Which original prompts round ``index`` (1-based) trains on: window ``index`` of a seeded order."""

    index: int = Field(ge=1, description="The round (1-based): it trains on window `index` of the order.")
    size: int = Field(ge=1, description="Original prompts per window (the campaign's prompts_per_round).")
    seed: int = Field(description="Seeds the order; the same for every round of a campaign.")


class MixConfig(StrictModel):
    """How a round's training input is built: its originals plus a share of its synthetic questions."""

    ratio: float = Field(ge=0, le=1, description="Share of synthetic rows in the mix; 0: the originals only.")
    seed: int = Field(description="Seeds which synthetic rows are drawn (the round's training seed).")


class CampaignConfig(StrictModel):
    """Everything a campaign needs; each section is the config of the stage that consumes it."""

    name: str = Field(
        "embedded", pattern=r"^[A-Za-z0-9_.-]+$", description="Campaign (and MLflow experiment) name."
    )
    rounds: int = Field(2, ge=1, description="Unsupervised rounds after the baseline (round 0).")
    prompts_per_round: int | None = Field(
        None,
        ge=1,
        description=(
            "Each round trains on the next N original prompts of one seeded order of the unlabeled pool: "
            "disjoint windows across rounds until the pool is used up, then it wraps. Continual rounds "
            "need new data: a round that relabels what the last one learned gets no new information. "
            "null: every round draws from the whole pool."
        ),
    )
    embedded: EmbeddedConfig | None = Field(
        default_factory=EmbeddedConfig,
        description="Build world + tiny model + first SFT; null for a real model.",
    )
    start_model: Path | None = Field(
        None, description="Checkpoint directory of model(0) when `embedded` is null."
    )
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="Unlabeled data; empty with `embedded` = the world's unlabeled split.",
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Ingest settings.")
    synthesize: SynthesizeConfig | None = Field(
        default_factory=SynthesizeConfig,
        description="Question synthesis each round; null to train on originals only.",
    )
    train: TrainConfig = Field(
        default_factory=TrainConfig, description="GRPO with majority-vote self-reward."
    )
    evaluate: EvalConfig = Field(
        default_factory=EvalConfig, description="Sampling and scoring of evaluation."
    )
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=lambda: [BenchmarkSpec(name="world")], description="The evaluation suite (and gate)."
    )
    gate: GateConfig = Field(default_factory=GateConfig, description="When a round's model is promoted.")
    premise: PremiseConfig | None = Field(
        default_factory=PremiseConfig,
        description=(
            "Round 0 measures majority@n vs greedy on labelled dev rows (the embedded world's dev split, or "
            "`premise.data`) and, with `require_premise`, stops before training when the vote is no better; "
            "null: skip the check."
        ),
    )
    collapse: CollapseConfig = Field(
        default_factory=CollapseConfig, description="Stop signals for self-reward collapse."
    )
    model_registry: ModelRegistry = Field(
        "copy",
        description=(
            "How each round's model reaches the MLflow registry: copy (logged as a run artifact: a "
            "self-contained store, fine for small models), reference (a version pointing at the checkpoint "
            "on disk: no copy, for 7B rounds; the checkpoint must stay where it is), off (no version; the "
            "run's model_dir tag names it)."
        ),
    )
    stage_timeout_s: float = Field(6 * 3600, gt=0, description="Prefect timeout of any one stage task.")
    stage_retries: int = Field(
        1, ge=0, description="Retries of a stage after a transient (non-validation) failure."
    )

    @model_validator(mode="after")
    def _has_a_start(self) -> CampaignConfig:
        if self.embedded is None and self.start_model is None:
            raise ValueError(
                "set `start_model` (a checkpoint directory) or keep `embedded` for the demo world"
            )
        if self.embedded is None and not self.sources:
            raise ValueError("a campaign without `embedded` needs `sources` (unlabeled data to ingest)")
        for name in WORLD_BENCHMARKS:
            if any(b.name == name for b in self.benchmarks) and self.embedded is None:
                raise ValueError(f"benchmark `{name}` needs the embedded world; remove it or keep `embedded`")
        suite = [b.name for b in self.benchmarks]
        if len(set(suite)) != len(suite):
            raise ValueError(f"benchmarks: {suite} names a benchmark twice; keep one entry per benchmark")
        unknown = [name for name in self.gate.benchmarks or [] if name not in suite]
        if unknown:
            raise ValueError(
                f"gate.benchmarks: {unknown} not in the evaluation suite {suite}; add them to `benchmarks` "
                "or remove them from `gate.benchmarks`"
            )
        if "world-dev" in suite and self.embedded is not None and self.embedded.world.n_dev == 0:
            raise ValueError(
                "benchmark `world-dev` needs dev rows: set embedded.world.n_dev > 0 or remove it"
            )
        premise = self.premise
        if premise is not None and premise.data is None and self.embedded is not None:
            size = getattr(self.embedded.world, f"n_{premise.split}", None)
            if size is None:
                raise ValueError(
                    f"premise.split: {premise.split!r} is not a world split; use dev (or sft, heldout, unlabeled)"
                )
            if size == 0:
                raise ValueError(
                    f"premise: measures on the world's {premise.split} split but embedded.world.n_{premise.split} "
                    "is 0; set it > 0, point premise.data at a labelled dev set, or set premise: null"
                )
        return self

    def key_params(self) -> dict[str, Any]:
        """The campaign's MLflow params: the settings a reader compares campaigns by.

        The whole config goes to the run as ``config.yaml``; ~190 flattened params made the
        UI's params table and parallel-coordinates view unreadable.
        """
        train = self.train
        return {
            "name": self.name,
            "rounds": self.rounds,
            "prompts_per_round": self.prompts_per_round,
            "start": (
                f"embedded world v{self.embedded.world.version} seed {self.embedded.world.seed}"
                if self.embedded is not None
                else str(self.start_model)
            ),
            "reward": train.reward.kind,
            "teacher": train.reward.teacher if train.reward.kind == "majority_vote" else None,
            "min_vote_ratio": train.reward.vote.min_vote_ratio,
            "rollout_n": train.rollout.n,
            "temperature": train.rollout.temperature,
            "lr": train.optim.lr,
            "steps_per_round": train.data.max_steps,
            "prompts_per_step": train.data.prompts_per_step,
            "kl_coef": train.algorithm.kl_coef,
            "synthesis": self.synthesize.strategy if self.synthesize is not None else None,
            "synthetic_ratio": self.synthesize.synthetic_ratio if self.synthesize is not None else 0.0,
            "gate_benchmarks": ",".join(self.gate.benchmarks or [b.name for b in self.benchmarks]),
            "gate_tolerance": self.gate.tolerance,
            "premise_recheck": self.premise.recheck if self.premise is not None else None,
        }

    def round_window(self, round_index: int) -> RoundWindow | None:
        """Round ``round_index``'s window of the unlabeled pool, or None (``prompts_per_round`` unset)."""
        if self.prompts_per_round is None:
            return None
        return RoundWindow(index=round_index, size=self.prompts_per_round, seed=self.train.trainer.seed)

    def round_train(self, round_index: int) -> TrainConfig:
        """Round ``round_index``'s training config: the trainer seed moves on by one per round.

        Round 1 keeps ``trainer.seed``. Without this, a round that follows a rejected round starts
        from the same champion with the same seed, prompts and config, and retrains bit-identically.
        """
        trainer = self.train.trainer.model_copy(update={"seed": self.train.trainer.seed + round_index - 1})
        return self.train.model_copy(update={"trainer": trainer})
