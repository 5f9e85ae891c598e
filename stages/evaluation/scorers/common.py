"""Helpers shared by the benchmark scorers: response trimming, choice letters, accuracy breakdowns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from mmupt.answers import MAX_RESPONSE_CHARS, canonical_answer
from stages.evaluation.types import EvalItem, MetricRow, Verdict

EMPTY = Verdict(extracted=None, correct=False, note="empty_response")
NO_ANSWER = "no_answer"


def tail(response: str) -> str:
    """The part of a response that is searched: the final answer is at the end, and this bounds work."""
    return response[-MAX_RESPONSE_CHARS:]


def is_empty(response: str | None) -> bool:
    return response is None or not response.strip()


def choice_letter(text: str | None, n_choices: int | None = None) -> str | None:
    """The option letter ``text`` states (``B``, ``(B)``, ``B.``, ``option b``, ``B. 45°``), if any.

    Letters beyond the question's ``n_choices`` are not choices (``E`` of a four-option question).

    >>> choice_letter("(C)"), choice_letter("C. 12 cm"), choice_letter("12"), choice_letter("E", 4)
    ('C', 'C', None, None)
    """
    if not text:
        return None
    canonical = canonical_answer(text)
    if len(canonical) != 1 or not ("A" <= canonical <= "Z"):
        return None
    if n_choices is not None and ord(canonical) - ord("A") >= n_choices:
        return None
    return canonical


def subset_label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


def _values(item: EvalItem, key: str) -> list[Any]:
    value = item.subset.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def accuracy_rows(
    items: Sequence[EvalItem],
    verdicts: Sequence[Verdict],
    breakdowns: Iterable[tuple[str, ...]] = (),
    metric: str = "accuracy",
    include_all: bool = True,
) -> list[MetricRow]:
    """Accuracy over all items and per value of each breakdown (a tuple of subset keys).

    A list-valued key (MathVista ``skills``) counts an item once under each of its values, as
    the official script does. Items without a value for a key are left out of that breakdown.
    """
    rows: list[MetricRow] = []
    if include_all and items:
        rows.append(MetricRow(metric, "all", sum(v.correct for v in verdicts) / len(items), len(items)))
    for keys in breakdowns:
        groups: dict[tuple[Any, ...], list[bool]] = defaultdict(list)
        for item, verdict in zip(items, verdicts, strict=True):
            combos: list[tuple[Any, ...]] = [()]
            for key in keys:
                combos = [c + (v,) for c in combos for v in _values(item, key)]
            for combo in combos:
                groups[combo].append(verdict.correct)
        for combo in sorted(groups, key=lambda c: tuple(str(x) for x in c)):
            hits = groups[combo]
            rows.append(MetricRow(metric, subset_label(keys, combo), sum(hits) / len(hits), len(hits)))
    return rows
