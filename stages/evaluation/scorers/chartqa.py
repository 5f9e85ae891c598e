r"""ChartQA scoring: relaxed accuracy, as in the ChartQA paper and pix2struct's implementation.

A prediction is right when, for any accepted label, both parse as numbers (a trailing ``%``
divides by 100) and the relative error is at most 5% (the label must be non-zero), or otherwise
when the two strings are equal ignoring case. The answer is taken from the response with the
shared ``extract_answer`` (official evaluations feed the model's short answer directly) and
cleaned of LaTeX wrappers (``$``, ``\text{}``, ``\%``) and a trailing period only: thousands
separators and units are *not* removed, as officially.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmupt.answers import extract_answer
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

TOLERANCE = 0.05
METRIC = "relaxed_accuracy"
_TEXT_RE = re.compile(r"\\(?:text|mathrm|textbf)\s*\{([^{}]*)\}")


def _to_float(text: str) -> float | None:
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_correct(target: str, prediction: str, tolerance: float = TOLERANCE) -> bool:
    """pix2struct's ``relaxed_correctness``: 5% relative tolerance for numbers, else exact (case-free)."""
    pred, gold = _to_float(prediction), _to_float(target)
    if pred is not None and gold:
        return abs(pred - gold) / abs(gold) <= tolerance
    return prediction.lower() == target.lower()


def clean(extracted: str) -> str:
    text = _TEXT_RE.sub(r"\1", extracted.strip()).replace("\\%", "%").strip("$ ").rstrip(".").strip()
    return text


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    extracted = extract_answer(tail(response))
    if extracted is None:
        return Verdict(None, False, NO_ANSWER)
    prediction = clean(extracted)
    return Verdict(prediction, any(relaxed_correct(gold, prediction) for gold in item.meta["golds"]))


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    return accuracy_rows(items, verdicts, [("source",)], metric=METRIC)
