"""MATH-Vision (mathllm/MATH-V, MathLLMs/MathVision): ``test`` (3040) and ``testmini`` (304).

The question keeps its ``<image1>`` markers (one composite image per problem) and the options are
listed after it as ``(A) ... (B) ...``, as the authors' evaluation prompts do. ``options`` is
``[]`` for free-form questions.
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
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "subject"


def build_problem(question: str, options: list[str]) -> str:
    if not options:
        return question
    listed = "\n".join(
        f"({letter}) {option}" for letter, option in zip(letters(len(options)), options, strict=True)
    )
    return f"{question}\nOptions:\n{listed}"


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "id", "question", "answer")
    options = [str(o) for o in row.get("options") or []]
    gold = clean_gold(row["answer"])
    if options and not (len(gold) == 1 and "A" <= gold <= letters(len(options))[-1]):
        raise RowProblem("bad_value", f"answer {gold!r} is not an option letter of {len(options)} options")
    level = row.get("level")
    item = EvalItem(
        id=str(row["id"]),
        problem=build_problem(str(row["question"]), options),
        images=[],
        gold=gold,
        subset={"level": int(level) if level is not None else None, "subject": row.get("subject")},
        meta={"options": options},
    )
    return Built(item, [row.get("decoded_image") or row.get("image")])


def load(data_path: Path, options: LoadOptions) -> Loaded:
    files = find_data_files(data_path, options.split, "mathvision")
    return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="mathvision")
