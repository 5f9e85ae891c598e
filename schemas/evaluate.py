"""Config of the evaluation stage (``stages/evaluation``): what to load, how to sample, how to score.

Defaults follow the MM-UPT evaluation protocol (one sample per question at temperature 0.2,
the shared reasoning prompt) so that numbers are comparable with the paper's; greedy decoding is
``sampling.temperature: 0``. Scoring is rule-based; the optional LLM judge is off by default and
is only ever contacted when ``judge.enabled`` is true.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import StrictModel
from schemas.engine import EngineConfig, SamplingParams


def _default_sampling() -> SamplingParams:
    return SamplingParams(n=1, temperature=0.2, top_p=1.0, max_new_tokens=2048, seed=0)


class ScoringConfig(StrictModel):
    """How responses are scored: in a bounded process pool, with a hard per-item time limit."""

    workers: int = Field(
        2,
        ge=0,
        description="Scoring processes. 0 scores in-process (debugging only: no timeout guard).",
    )
    chunk_size: int = Field(128, ge=1, description="Responses sent to a worker at a time.")
    item_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Wall-clock limit for scoring one response; a response over it is marked note=timeout.",
    )


class JudgeConfig(StrictModel):
    """Optional OpenAI-compatible LLM judge for benchmarks whose official protocol uses one.

    It only re-checks responses the rule-based scorer marked wrong, and only for ``benchmarks``.
    The API key is read from the environment variable named by ``api_key_env`` and never logged.
    """

    enabled: bool = Field(False, description="Contact the judge at all (tests never turn it on).")
    base_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:8000/v1 (the /chat/completions parent)."
    )
    model: str | None = Field(None, description="Model name sent to the judge endpoint.")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the API key.")
    timeout_s: float = Field(30.0, gt=0, description="HTTP timeout of one judge call.")
    max_retries: int = Field(
        2, ge=0, description="Retries of a failed judge call before keeping the rule verdict."
    )
    benchmarks: list[str] = Field(
        default_factory=lambda: ["mathverse", "mathvista"],
        description="Benchmarks whose official scoring uses an LLM (the judge applies only to these).",
    )

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> JudgeConfig:
        if self.enabled:
            if not self.base_url or not self.model:
                raise ValueError("judge.enabled needs judge.base_url and judge.model")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("judge.base_url must start with http:// or https://")
        return self


class EvalConfig(StrictModel):
    """Everything ``mmupt evaluate`` / ``mmupt score`` need besides the paths."""

    sampling: SamplingParams = Field(
        default_factory=_default_sampling,
        description="MM-UPT protocol: n=1, temperature 0.2; set temperature 0 for greedy.",
    )
    engine: EngineConfig = Field(default_factory=EngineConfig, description="Backend used for --model DIR.")
    generation_batch: int = Field(64, ge=1, description="Requests handed to engine.generate at a time.")
    split: str | None = Field(
        None, description="Benchmark split (e.g. testmini, test). None: the benchmark's default split."
    )
    subsets: list[str] | None = Field(
        None,
        description=(
            "Keep only these values of the benchmark's subset key: MathVerse problem_version, MATH-V subject, "
            "We-Math 2steps/3steps, ChartQA human/augmented, IconQA ques_type, world task, MathVista task."
        ),
    )
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N accepted items.")
    mathverse_query: Literal["query_cot", "query_wo"] = Field(
        "query_cot", description="Which MathVerse prompt field to ask with."
    )
    scoring: ScoringConfig = Field(
        default_factory=ScoringConfig, description="Scoring process pool and per-response time limit."
    )
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="Optional LLM judge for benchmarks whose protocol uses one."
    )

    @field_validator("sampling")
    @classmethod
    def _one_sample(cls, value: SamplingParams) -> SamplingParams:
        if value.n != 1:
            raise ValueError("evaluation scores one response per question: set sampling.n: 1")
        return value
