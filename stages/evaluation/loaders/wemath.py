"""We-Math (We-Math/We-Math): ``testmini`` = 1740 questions forming 525 problems.

A problem (``ID``, e.g. ``2steps_17``) is a multi-step question (``key`` ``2steps_multi`` /
``3steps_multi``) plus the one-step questions it decomposes into (``2steps_1``, ``2steps_2``,
...). ``ID`` is therefore shared by several rows; the item id is ``question number``, which is
unique. ``option`` is ONE string ("A. ...;B. ...").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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

SUBSET_KEY = "steps"
_KEY_RE = re.compile(r"^([23])steps_(\d|multi)$")


def stage_of(key: str) -> str:
    """S1 for one-step questions, S2/S3 for the two-/three-step (multi) questions."""
    steps, part = _KEY_RE.match(key).groups()  # type: ignore[union-attr]
    return f"S{steps}" if part == "multi" else "S1"


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "ID", "question", "option", "answer", "key", "question number")
    key = str(row["key"]).strip()
    match = _KEY_RE.match(key)
    if not match:
        raise RowProblem(
            "bad_value", f"key {key!r} is not 2steps_1..2, 2steps_multi, 3steps_1..3 or 3steps_multi"
        )
    steps = int(match.group(1))
    gold = clean_gold(row["answer"]).upper()
    if not re.fullmatch(r"[A-H]", gold):
        raise RowProblem("bad_value", f"answer {gold!r} is not an option letter")
    item = EvalItem(
        id=str(row["question number"]),
        problem=f"Question: {row['question']}\nOptions: {row['option']}",
        images=[],
        gold=gold,
        subset={
            "steps": f"{steps}steps",
            "key": key,
            "stage": stage_of(key),
            "concept": row.get("knowledge concept"),
        },
        meta={"group": f"{row['ID']}", "key": key, "steps": steps},
    )
    return Built(item, [row.get("image_path")])


def load(data_path: Path, options: LoadOptions) -> Loaded:
    files = find_data_files(data_path, options.split, "wemath")
    return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="wemath")
