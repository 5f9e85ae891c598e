r"""We-Math scoring: official letter extraction and the four-dimensional metrics.

Extraction (We-Math ``evaluation/four_dimensional_metrics.py``): the text after the last
"Answer", with ``> < : .`` removed and stripped; its first character if it is one of A-H.
Our prompt asks for ``\boxed{}``, so a letter found by the shared extractor (box first) is
taken before the official rule; without it nearly every response would extract nothing.

Four-dimensional metrics, per *problem* (a multi-step question and its one-step questions,
grouped by ``ID``), exactly as the official script defines them (s = one-step verdicts,
m = multi-step verdict):

===================  ================================  ===============================
category             strict                            loose
===================  ================================  ===============================
IK (insufficient     some s wrong, m wrong             same
knowledge)
IG (inadequate       all s right, m wrong              same
generalization)
CM (complete         all s right, m right              some s right, m right
mastery)
RM (rote             some s wrong, m right             all s wrong, m right
memorization)
===================  ================================  ===============================

IK, IG and CM are shares of N, the number of problems; RM is ``RM / (CM + RM)``; the score is
``(N - 0.5 IG - RM - IK) / N`` (counts), i.e. ``(CM + 0.5 IG) / N``. The official script
hard-codes N = 525 (all of testmini); here N is the number of *complete* problems evaluated
(all of their questions scored), so a subset or a ``limit`` gives a meaningful score, and the
number of incomplete problems left out is reported. S1/S2/S3 are the accuracies of the one-step,
two-step-multi and three-step-multi questions (``accuracy.py``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from mmupt.answers import extract_answer
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, choice_letter, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

LETTERS = "ABCDEFGH"
_NOISE_RE = re.compile(r"[><:.]")


def official_letter(response: str) -> str | None:
    """The official rule: first character after the last "Answer" (noise removed), if A-H."""
    rest = _NOISE_RE.sub("", response.split("Answer")[-1].strip()).strip()
    return rest[0] if rest and rest[0] in LETTERS else None


def extract_letter(response: str) -> str | None:
    letter = choice_letter(extract_answer(response), len(LETTERS))
    return letter or official_letter(response)


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    letter = extract_letter(tail(response))
    if letter is None:
        return Verdict(None, False, NO_ANSWER)
    return Verdict(letter, letter == item.gold)


# ---------------------------------------------------------------------------- four dimensions
def problem_groups(
    items: Sequence[EvalItem], verdicts: Sequence[Verdict]
) -> tuple[list[tuple[int, list[bool], bool]], int]:
    """Complete problems as (steps, one-step verdicts, multi-step verdict), and the incomplete count."""
    by_group: dict[str, dict[str, bool]] = defaultdict(dict)
    steps_of: dict[str, int] = {}
    for item, verdict in zip(items, verdicts, strict=True):
        group = f"{item.meta['steps']}:{item.meta['group']}"
        by_group[group][item.meta["key"]] = verdict.correct
        steps_of[group] = item.meta["steps"]
    complete, incomplete = [], 0
    for group, answers in sorted(by_group.items()):
        steps = steps_of[group]
        keys = [f"{steps}steps_{i}" for i in range(1, steps + 1)]
        multi = f"{steps}steps_multi"
        if all(k in answers for k in keys) and multi in answers:
            complete.append((steps, [answers[k] for k in keys], answers[multi]))
        else:
            incomplete += 1
    return complete, incomplete


def four_dimensional(problems: list[tuple[int, list[bool], bool]]) -> dict[str, tuple[float, int]]:
    """metric -> (value, denominator) for IK, IG, CM/RM strict and loose, score strict and loose."""
    n = len(problems)
    ik = sum(not all(s) and not m for _, s, m in problems)
    ig = sum(all(s) and not m for _, s, m in problems)
    cm_strict = sum(all(s) and m for _, s, m in problems)
    rm_strict = sum(not all(s) and m for _, s, m in problems)
    cm_loose = sum(any(s) and m for _, s, m in problems)
    rm_loose = sum(not any(s) and m for _, s, m in problems)
    if n == 0:
        return {}

    def ratio(part: int, whole: int) -> tuple[float, int]:
        return (part / whole if whole else 0.0, whole)

    return {
        "score_strict": ((n - 0.5 * ig - rm_strict - ik) / n, n),
        "score_loose": ((n - 0.5 * ig - rm_loose - ik) / n, n),
        "IK": ratio(ik, n),
        "IG": ratio(ig, n),
        "CM_strict": ratio(cm_strict, n),
        "CM_loose": ratio(cm_loose, n),
        "RM_strict": ratio(rm_strict, cm_strict + rm_strict),
        "RM_loose": ratio(rm_loose, cm_loose + rm_loose),
    }


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    rows: list[MetricRow] = []
    problems, _ = problem_groups(items, verdicts)
    for subset, chosen in (
        ("all", problems),
        ("steps=2steps", [p for p in problems if p[0] == 2]),
        ("steps=3steps", [p for p in problems if p[0] == 3]),
    ):
        for metric, (value, n) in four_dimensional(chosen).items():
            rows.append(MetricRow(metric, subset, value, n))
    rows += accuracy_rows(items, verdicts, [("stage",), ("steps",)])
    return rows


def incomplete_problems(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> int:
    return problem_groups(items, verdicts)[1]
