"""The benchmark registry: name -> loader, prompt builder, scorer, aggregation.

Adding a benchmark means one loader module, one scorer module and one entry here; ``run.py``
and the CLI never name a benchmark. Scorer functions are module-level so that scoring worker
processes can receive them by reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmupt.engine.base import GenerationRequest
from mmupt.errors import ConfigError
from stages.evaluation.loaders import chartqa as chartqa_loader
from stages.evaluation.loaders import iconqa as iconqa_loader
from stages.evaluation.loaders import mathverse as mathverse_loader
from stages.evaluation.loaders import mathvision as mathvision_loader
from stages.evaluation.loaders import mathvista as mathvista_loader
from stages.evaluation.loaders import wemath as wemath_loader
from stages.evaluation.loaders import world as world_loader
from stages.evaluation.loaders.common import Loaded
from stages.evaluation.scorers import chartqa, iconqa, mathverse, mathvision, mathvista, wemath, world
from stages.evaluation.types import EvalItem, LoadOptions, MetricRow, Verdict

ScoreFn = Callable[[EvalItem, str], Verdict]
AggregateFn = Callable[[Sequence[EvalItem], Sequence[Verdict]], list[MetricRow]]


def default_request(item: EvalItem) -> GenerationRequest:
    """The benchmark's query, asked with the shared reasoning prompt (built by the engine)."""
    return GenerationRequest(request_id=item.id, problem=item.problem, images=list(item.images))


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    default_split: str
    subset_key: str | None
    primary_metric: str
    load: Callable[[Path, LoadOptions], Loaded]
    score: ScoreFn
    aggregate: AggregateFn
    splits: tuple[str, ...] = ()  # the published splits, tried when the default one is absent
    request: Callable[[EvalItem], GenerationRequest] = default_request
    extra_stats: Callable[[Sequence[EvalItem], Sequence[Verdict]], dict[str, Any]] | None = None


def _wemath_stats(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    complete, incomplete = wemath.problem_groups(items, verdicts)
    return {"complete_problems": len(complete), "incomplete_problems_left_out": incomplete}


def _mathverse_stats(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    return {"overall_scope": mathverse.overall_scope(items)}


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "mathvista",
            "MathVista",
            "testmini",
            "task",
            "accuracy",
            mathvista_loader.load,
            mathvista.score,
            mathvista.aggregate,
            splits=("testmini", "test"),
        ),
        Benchmark(
            "mathverse",
            "MathVerse",
            "testmini",
            "problem_version",
            "accuracy",
            mathverse_loader.load,
            mathverse.score,
            mathverse.aggregate,
            splits=("testmini",),
            extra_stats=_mathverse_stats,
        ),
        Benchmark(
            "mathvision",
            "MATH-Vision",
            "test",
            "subject",
            "accuracy",
            mathvision_loader.load,
            mathvision.score,
            mathvision.aggregate,
            splits=("test", "testmini"),
        ),
        Benchmark(
            "wemath",
            "We-Math",
            "testmini",
            "steps",
            "score_strict",
            wemath_loader.load,
            wemath.score,
            wemath.aggregate,
            splits=("testmini",),
            extra_stats=_wemath_stats,
        ),
        Benchmark(
            "chartqa",
            "ChartQA",
            "test",
            "source",
            chartqa.METRIC,
            chartqa_loader.load,
            chartqa.score,
            chartqa.aggregate,
            splits=("test", "val"),
        ),
        Benchmark(
            "iconqa",
            "IconQA",
            "test",
            "ques_type",
            "accuracy",
            iconqa_loader.load,
            iconqa.score,
            iconqa.aggregate,
            splits=("test", "val"),
        ),
        Benchmark(
            "world",
            "embedded world (held-out)",
            "heldout",
            "task",
            "accuracy",
            world_loader.load,
            world.score,
            world.aggregate,
            splits=("heldout",),
        ),
        Benchmark(
            "world-dev",
            "embedded world (dev: gate and diagnostics)",
            "dev",
            "task",
            "accuracy",
            world_loader.load_dev,
            world.score,
            world.aggregate,
            splits=("dev",),
        ),
    )
}


def benchmark_names() -> list[str]:
    return sorted(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name`` (case-insensitive); a ConfigError listing valid names otherwise."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"mathv": "mathvision", "mathvision": "mathvision", "wemath": "wemath", "worlddev": "world-dev"}
    key = aliases.get(key, key)
    if key not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; valid names: {', '.join(benchmark_names())}")
    return BENCHMARKS[key]
