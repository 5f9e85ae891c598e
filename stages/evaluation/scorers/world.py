"""The embedded world: exact answers checked with the shared equivalence (as ``stages/world_eval``)."""

from __future__ import annotations

from collections.abc import Sequence

from mmupt.answers import answers_equivalent, extract_answer
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    extracted = extract_answer(tail(response))
    if extracted is None:
        return Verdict(None, False, NO_ANSWER)
    return Verdict(extracted, answers_equivalent(extracted, item.gold))


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    return accuracy_rows(items, verdicts, [("task",), ("difficulty",)])
