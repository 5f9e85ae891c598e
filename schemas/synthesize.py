"""Config of the synthesis stage (``stages/synthesis``): the model writes new questions about the images.

Defaults follow the design notes: sample several candidates per image at temperature ~1 (diversity
matters more than polish, the filters remove the junk), keep a candidate only when it parses, looks
like one self-contained question and is not a copy of the original.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import StrictModel
from schemas.engine import EngineConfig

Strategy = Literal["in-context", "direct"]
STRATEGIES: tuple[Strategy, ...] = ("in-context", "direct")


class FilterConfig(StrictModel):
    """Bounds of the cheap, model-free filters applied to every parsed question."""

    min_chars: int = Field(12, ge=1, description="Drop questions shorter than this (characters).")
    max_chars: int = Field(
        600, ge=1, description="Drop questions longer than this (characters, options included)."
    )
    min_words: int = Field(3, ge=1, description="Drop questions with fewer words.")
    max_words: int = Field(100, ge=1, description="Drop questions with more words.")
    copy_similarity: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Drop a question whose normalised similarity (rapidfuzz ratio, 0..1) to the original is at "
        "least this: a near-copy adds no new training signal.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> FilterConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) exceeds max_chars ({self.max_chars})")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) exceeds max_words ({self.max_words})")
        return self


class AnswerabilityConfig(StrictModel):
    """Keep only questions the model itself answers consistently (its majority vote reaches a share).

    A question on which the model's own samples never agree produces no pseudo-label in training
    (every group is skipped), so it costs rollouts and teaches nothing.
    """

    enabled: bool = Field(
        False, description="Run the answerability filter (n extra samples per kept question)."
    )
    n: int = Field(4, ge=2, description="Reasoning samples per candidate question.")
    min_vote_ratio: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Keep when the majority answer's share of the n samples reaches this.",
    )
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the answer samples.")
    max_new_tokens: int = Field(256, ge=1, description="Token budget of one answer sample.")


class RayJobConfig(StrictModel):
    """Where shards run: Ray actors when enabled or an address is given, else in this process."""

    enabled: bool = Field(
        False, description="Run shards on Ray actors (a local Ray is started if none is running)."
    )
    address: str | None = Field(
        None, description="Ray cluster address (e.g. 'auto', 'ray://head:10001'); implies enabled."
    )
    num_actors: int = Field(2, ge=1, description="Actors, each holding one engine (one model copy).")
    cpus_per_actor: float = Field(
        1.0, gt=0, description="Ray CPUs reserved per actor (torch threads per actor)."
    )
    gpus_per_actor: float | None = Field(
        None, ge=0, description="Ray GPUs per actor; None: 1 for the vllm backend, 0 for hf on CPU."
    )

    @property
    def active(self) -> bool:
        return self.enabled or self.address is not None


class SynthesizeConfig(StrictModel):
    """How the model writes new questions, how they are filtered, and how the job is split up."""

    strategy: Literal["in-context", "direct", "both"] = Field(
        "both",
        description="in-context: image + original question + answer -> new question; direct: image only; both.",
    )
    n_candidates: int = Field(4, ge=1, description="Candidate questions sampled per sample and strategy.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature of the question writer.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus mass of the question writer.")
    max_new_tokens: int = Field(
        160, ge=8, description="Token budget of one candidate (question + its answer)."
    )
    seed: int = Field(0, description="Base seed; each shard derives its own from it and its rows.")
    use_oracle_answer: bool = Field(
        True,
        description="in-context: show the sample's oracle_answer when present; else (or when false) the model's "
        "own majority answer over answer_samples reasoning samples.",
    )
    answer_samples: int = Field(4, ge=1, description="Reasoning samples voted on for the in-context answer.")
    answer_min_vote_ratio: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The model's majority answer is shown only when its vote share reaches this; otherwise "
        "the sample gets no in-context question (reject no_context_answer).",
    )
    answer_temperature: float = Field(
        1.0, gt=0.0, description="Temperature of the in-context answer samples."
    )
    answer_max_new_tokens: int = Field(256, ge=1, description="Token budget of one in-context answer sample.")
    max_samples: int | None = Field(None, ge=1, description="Use only the first max_samples input rows.")
    filters: FilterConfig = Field(
        default_factory=FilterConfig, description="Model-free checks every parsed question must pass."
    )
    answerability: AnswerabilityConfig = Field(
        default_factory=AnswerabilityConfig,
        description="Optional check that the model answers a new question consistently.",
    )
    engine: EngineConfig = Field(
        default_factory=EngineConfig, description="Backend that writes the questions."
    )
    ray: RayJobConfig = Field(
        default_factory=RayJobConfig, description="Where shards run: Ray actors or this process."
    )
    shard_size: int = Field(64, ge=1, description="Input samples per shard (the unit of resume and retry).")
    shard_retries: int = Field(1, ge=0, description="Extra attempts for a shard that crashed.")
    progress: bool = Field(True, description="Show a shard progress bar (only ever on a terminal).")
    synthetic_ratio: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="mix_samples: share of synthetic rows in the training mix (1.0: synthetic only).",
    )

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        return STRATEGIES if self.strategy == "both" else (self.strategy,)  # type: ignore[return-value]

    def generation_fingerprint(self) -> dict[str, object]:
        """The settings that change what a shard produces (not where or how often it runs)."""
        return self.model_dump(
            mode="json", exclude={"ray", "shard_retries", "synthetic_ratio", "max_samples", "progress"}
        )
