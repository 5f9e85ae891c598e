"""The records that flow through evaluation: items, rejects, verdicts and metric rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvalItem:
    """One benchmark question, normalised across layouts.

    ``problem`` is the benchmark's own query text (the engine wraps it in the shared reasoning
    prompt); ``subset`` holds the breakdown keys written to PREDICTIONS.subset as JSON; ``meta``
    holds what the scorer needs besides the gold answer (choices, precision, groups, ...).
    """

    id: str
    problem: str
    images: list[bytes]
    gold: str
    subset: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def for_scoring(self) -> EvalItem:
        """A copy small enough to ship to scoring workers (they need neither pixels nor the question)."""
        return EvalItem(self.id, "", [], self.gold, self.subset, self.meta)

    def __reduce__(self) -> tuple[type[EvalItem], tuple[Any, ...]]:
        # Positional reconstruction pickles about twice as fast as the default __dict__ state,
        # which matters when thousands of items go to the scoring workers.
        return (EvalItem, (self.id, self.problem, self.images, self.gold, self.subset, self.meta))


@dataclass(frozen=True)
class Rejected:
    """A data row that cannot be evaluated, with a machine-friendly reason (REJECTS table)."""

    row: str
    source: str
    reason: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The scorer's decision on one response."""

    extracted: str | None
    correct: bool
    note: str | None = None


@dataclass(frozen=True)
class MetricRow:
    """One SCORES row: ``subset`` is "all" or "key=value[,key=value]"."""

    metric: str
    subset: str
    value: float
    n: int


@dataclass(frozen=True)
class LoadOptions:
    """What a loader needs from the config (kept separate so loaders do not depend on it)."""

    split: str
    subsets: tuple[str, ...] | None = None
    limit: int | None = None
    load_images: bool = True
    mathverse_query: str = "query_cot"
