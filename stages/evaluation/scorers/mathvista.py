r"""MathVista scoring: rule-based extraction + the official normalisation and exact match.

Official procedure (lupantech/MathVista ``evaluation/extract_answer.py`` + ``calculate_score.py``):
an LLM (GPT-4) extracts the answer from the response (after a few quick rules: an exact choice
text, a plain integer/float response), then ``normalize_extracted_answer`` maps it to the answer
type and the prediction must equal the gold string exactly:

- multi_choice: "(X)" -> letter X; a letter -> that choice's text; otherwise the choice nearest
  by Levenshtein distance (first on ties);
- integer: ``str(int(float(x)))`` (truncation, as official);
- float: ``str(round(float(x), precision))``;
- list: ``str(x)``.

Here the LLM extraction is replaced by rules: the official quick rules first, then the shared
``extract_answer`` (last ``\boxed{}``, answer tags/phrases, final choice line); a choice letter in
any common shape (``B``, ``B.``, ``option B``, ``B. 145°``) counts as the letter; numbers are read
through ``answer_number`` (``1,000``, ``\frac{1}{2}``, ``12 cm``); a list written without brackets
(``2014, 2016``) is bracketed. A response with no extractable answer is wrong (the official
nearest-choice step would hand it the choice closest to the empty string).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from mmupt.answers import answer_number, extract_answer
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, choice_letter, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

BREAKDOWNS: tuple[tuple[str, ...], ...] = tuple(
    (key,)
    for key in (
        "question_type",
        "answer_type",
        "language",
        "source",
        "category",
        "task",
        "context",
        "grade",
        "skills",
    )
)
MAX_MATCH_CHARS = 500
"""Extractions are cut to this length before edit distances (bounds the O(n*m) work)."""

_PAREN_LETTER_RE = re.compile(r"\(([a-zA-Z])\)")
_LIST_ITEM_RE = re.compile(r"^-?\d+(?:\.\d+)?$")


def quick_extract(response: str, item: EvalItem) -> str | None:
    """The official rules that run before the LLM: exact choice text, plain int/float response."""
    text = response.strip()
    if item.meta["question_type"] == "multi_choice" and text in (item.meta["choices"] or []):
        return text
    if item.meta["answer_type"] == "integer":
        try:
            return str(int(text))
        except ValueError:
            pass
    if item.meta["answer_type"] == "float":
        try:
            return str(float(text))
        except ValueError:
            pass
    return None


def number(text: str) -> float | None:
    """A finite float from a plain number or anything ``answer_number`` reads (``1,000``, ``1/2``)."""
    try:
        value = float(text)
    except ValueError:
        exact = answer_number(text)
        value = float(exact) if exact is not None else math.nan
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _as_list(text: str) -> str:
    inner = text.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    parts = [p.strip() for p in inner.split(",")]
    if len(parts) > 1 and all(_LIST_ITEM_RE.match(p) for p in parts):
        return "[" + ", ".join(parts) + "]"
    return text.strip()


def nearest_choice(text: str, choices: list[str]) -> str:
    distances = [Levenshtein.distance(text[:MAX_MATCH_CHARS], choice) for choice in choices]
    return choices[distances.index(min(distances))]


def normalize(extraction: str, item: EvalItem) -> str | None:
    """The official ``normalize_extracted_answer`` (plus the letter shapes an LLM would have cleaned)."""
    meta = item.meta
    if meta["question_type"] == "multi_choice":
        choices: list[str] = meta["choices"]
        text = extraction.strip()
        paren = _PAREN_LETTER_RE.findall(text)
        if paren:  # official: "(x)" anywhere -> "X", which is then a letter or matched by distance
            text = paren[0].upper()
        letter = choice_letter(text, len(choices))
        if letter is not None:
            return choices[ord(letter) - ord("A")]
        return nearest_choice(text, choices)
    if meta["answer_type"] == "integer":
        value = number(extraction)
        return str(int(value)) if value is not None else None
    if meta["answer_type"] == "float":
        value = number(extraction)
        return str(round(value, meta["precision"])) if value is not None else None
    if meta["answer_type"] == "list":
        return _as_list(extraction)
    return extraction.strip()


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    text = tail(response)
    extraction = quick_extract(text, item) or extract_answer(text)
    if not extraction:
        return Verdict(None, False, NO_ANSWER)
    prediction = normalize(extraction, item)
    if prediction is None:
        return Verdict(extraction, False, "unparsable_" + item.meta["answer_type"])
    return Verdict(prediction, prediction == item.gold)


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    return accuracy_rows(items, verdicts, BREAKDOWNS)
