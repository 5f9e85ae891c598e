"""MathVerse (ZrrSkywalker/MathVerse, AI4Math/MathVerse): ``testmini`` = 788 problems x 5 versions.

Versions: Text Dominant, Text Lite, Vision Intensive, Vision Dominant, Vision Only (the five
"vision" versions, reported together as overall) and Text Only (a separate file/config,
reported apart). ``sample_index`` restarts at 1 in the Text Only release, so Text Only items get
the id ``text-only-<sample_index>`` to stay unique when both files are loaded together.

The question sent is ``query_cot`` (or ``query_wo``, config ``mathverse_query``). Option texts for
scoring are parsed from ``question_for_eval`` (Hub) or ``question`` ("Choices:\\nA:40°\\nB:...");
in Vision Only the choices live in the image, so only the letter can match there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmupt.answers import canonical_answer
from stages.evaluation.loaders.common import (
    Built,
    Loaded,
    RowProblem,
    clean_gold,
    collect,
    find_data_files,
    require,
)
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "problem_version"
VISION_VERSIONS = ("Text Dominant", "Text Lite", "Vision Intensive", "Vision Dominant", "Vision Only")
TEXT_ONLY = "Text Only"

_CHOICE_LINE_RE = re.compile(r"^\s*\(?([A-H])\)?\s*[:：.)]\s*(.+?)\s*$")
_CHOICES_RE = re.compile(r"\bChoices?\s*:")
_LETTER_TOKEN_RE = re.compile(r"^\(?([A-H])\)?\.?$")
_SEPARATOR_RE = re.compile(r"[\s,;&]+|\band\b")


def letter_set(text: str) -> list[str] | None:
    """The option letters ``text`` consists of (``C``, ``(C)``, ``C\\nD``, ``A, C``), else None.

    >>> letter_set("(C)"), letter_set("C\\nD"), letter_set("A and C"), letter_set("12")
    (['C'], ['C', 'D'], ['A', 'C'], None)
    """
    tokens = [t for t in _SEPARATOR_RE.split(text.strip()) if t]
    letters = []
    for token in tokens:
        match = _LETTER_TOKEN_RE.match(token)
        if not match:
            return None
        letters.append(match.group(1))
    return sorted(set(letters)) or None


def gold_letters(gold: str, choices: dict[str, str]) -> list[str] | None:
    """The gold as option letters: a letter set, or the letter of the option whose text it is.

    A few MathVerse multiple-choice answers are written as the option text ("090^\\circ T",
    "False") or as "(C)" / "C\\nD" (two correct options); None when the gold matches no option.
    """
    letters = letter_set(gold)
    if letters:
        return letters
    wanted = canonical_answer(gold)
    matches = [letter for letter, text in choices.items() if canonical_answer(text) == wanted]
    return matches[:1] or None


def parse_choices(question: str) -> dict[str, str]:
    """Letter -> option text from the lines after "Choices:" (empty when there is no such block).

    >>> parse_choices("angle CED is ()\\nChoices:\\nA:40°\\nB:60°")
    {'A': '40°', 'B': '60°'}
    """
    marker = _CHOICES_RE.search(question)
    if not marker:
        return {}
    block = question[marker.end() :]
    choices: dict[str, str] = {}
    for line in block.splitlines():
        match = _CHOICE_LINE_RE.match(line)
        if match:
            choices.setdefault(match.group(1), match.group(2))
    return choices


def _builder(query_field: str):
    def build(row: dict[str, Any], label: str, path: Path) -> Built:
        require(row, "sample_index", "problem_version", "answer", "question_type")
        version = str(row["problem_version"])
        query = row.get(query_field) or row.get("query_cot") or row.get("question")
        if not query:
            raise RowProblem("missing_field", f"field {query_field!r} is missing or empty")
        question_type = str(row["question_type"])
        if question_type not in ("multi-choice", "free-form"):
            raise RowProblem("bad_value", f"question_type {question_type!r} is not multi-choice or free-form")
        metadata = row.get("metadata") or {}
        sample = str(row["sample_index"])
        choices = parse_choices(str(row.get("question_for_eval") or row.get("question") or ""))
        gold = clean_gold(row["answer"])
        item = EvalItem(
            id=f"text-only-{sample}" if version == TEXT_ONLY else sample,
            problem=str(query),
            images=[],
            gold=gold,
            subset={
                "problem_version": version,
                "question_type": question_type,
                "subject": metadata.get("subject"),
                "subfield": metadata.get("subfield"),
            },
            meta={
                "question_type": question_type,
                "choices": choices,
                "gold_letters": gold_letters(gold, choices) if question_type == "multi-choice" else None,
                "problem_index": str(row.get("problem_index")),
            },
        )
        image = row.get("image")
        has_image = bool(image) and not (
            isinstance(image, dict) and not image.get("bytes") and not image.get("path")
        )
        if version != TEXT_ONLY and not has_image:
            raise RowProblem("image_missing", f"{version} problem without an image")
        return Built(item, [image] if has_image else [])

    return build


def load(data_path: Path, options: LoadOptions) -> Loaded:
    files = find_data_files(data_path, options.split, "mathverse")
    return collect(
        files, _builder(options.mathverse_query), options, subset_key=SUBSET_KEY, benchmark="mathverse"
    )
