"""MathVista (lupantech/MathVista, AI4Math/MathVista): ``testmini`` (1000) and ``test`` (5141).

The repository's ``data/testmini.json`` is an object keyed by ``pid`` and has no ``query``; the
Hub export carries the zero-shot ``query`` that the official ``build_query.py`` produces. When it
is absent we rebuild it in the same format (hint by answer type, question, unit, lettered
choices) so both layouts ask the same question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.evaluation.loaders.common import (
    Built,
    Loaded,
    RowProblem,
    clean_gold,
    collect,
    find_data_files,
    letters,
    require,
)
from stages.evaluation.scorers.mathvista import question_numbers
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "task"
METADATA_KEYS = ("category", "task", "context", "grade", "skills", "language", "source")

_HINTS = {
    "multi_choice": "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
    "integer": "Hint: Please answer the question requiring an integer answer and provide the final value, "
    "e.g., 1, 2, 3, at the end.",
    "float1": "Hint: Please answer the question requiring a floating-point number with one decimal place and "
    "provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
    "float2": "Hint: Please answer the question requiring a floating-point number with two decimal places and "
    "provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
    "list": "Hint: Please answer the question requiring a Python list as an answer and provide the final list, "
    "e.g., [1, 2, 3], [3, 2, 1], at the end.",
}


def _precision(value: Any) -> int | None:
    """Parquet stores ``precision`` as float (it is mostly null); the scorer needs an int."""
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise RowProblem("bad_value", f"precision {value!r} is not a number") from None


def build_query(row: dict[str, Any]) -> str:
    """The official zero-shot query: hint, question (with unit), lettered choices."""
    question_type, answer_type = row.get("question_type"), row.get("answer_type")
    precision = _precision(row.get("precision"))
    if question_type == "multi_choice":
        hint = _HINTS["multi_choice"]
    elif answer_type == "float":
        hint = _HINTS["float2" if precision == 2 else "float1"]
    else:
        hint = _HINTS.get(str(answer_type), _HINTS["integer"])
    question = f"Question: {row['question']}"
    if row.get("unit"):
        question += f" (Unit: {row['unit']})"
    parts = [hint, question]
    choices = row.get("choices") or []
    if choices:
        parts.append(
            "\n".join(
                ["Choices:"]
                + [f"({letter}) {c}" for letter, c in zip(letters(len(choices)), choices, strict=True)]
            )
        )
    return "\n".join(parts).strip()


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "question", "answer", "question_type", "answer_type")
    pid = row.get("pid") if row.get("pid") is not None else row.get("_key")
    if pid is None:
        raise RowProblem("missing_field", "field 'pid' is missing")
    metadata = row.get("metadata") or {}
    question_type = str(row["question_type"])
    answer_type = str(row["answer_type"])
    choices = [str(c) for c in row.get("choices") or []] or None
    if question_type == "multi_choice" and not choices:
        raise RowProblem("bad_value", "multi_choice question without choices")
    subset: dict[str, Any] = {"question_type": question_type, "answer_type": answer_type}
    for key in METADATA_KEYS:
        if key in metadata:
            subset[key] = metadata[key]
    item = EvalItem(
        id=str(pid),
        problem=str(row.get("query") or build_query(row)),
        images=[],
        gold=clean_gold(row["answer"]),
        subset=subset,
        meta={
            "choices": choices,
            "question_type": question_type,
            "answer_type": answer_type,
            "precision": _precision(row.get("precision")),
            # numbers the question itself states: a prose answer's own number is another one
            "question_numbers": question_numbers(str(row["question"])),
        },
    )
    image = row.get("decoded_image") or row.get("image")
    return Built(item, [image])


def load(data_path: Path, options: LoadOptions) -> Loaded:
    files = find_data_files(data_path, options.split, "mathvista")
    return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="mathvista")
