"""ChartQA (vis-nlp/ChartQA, HuggingFaceM4/ChartQA): ``test`` = 1250 human + 1250 augmented questions.

Repository layout: ``<split>/<split>_human.json`` and ``<split>_augmented.json`` with records
``{imgname, query, label}`` and images under ``<split>/png/``. Hub layout: Parquet with ``image``,
``query``, ``label`` (a list of accepted answers) and ``human_or_machine`` (0 human, 1 augmented).
There is no official question id: the id is ``<file stem>:<row>``.
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
    require,
)
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "source"


def _source(row: dict[str, Any], path: Path) -> str:
    flag = row.get("human_or_machine")
    if flag is not None:
        return "human" if int(flag) == 0 else "augmented"
    name = path.name.lower()
    return "human" if "human" in name else "augmented" if "augmented" in name else "unknown"


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "query", "label")
    golds = row["label"] if isinstance(row["label"], list) else [row["label"]]
    golds = [clean_gold(g) for g in golds if g is not None and str(g).strip()]
    if not golds:
        raise RowProblem("missing_field", "empty label")
    index = label.rsplit(":", 1)[-1].rsplit("[", 1)[-1].rstrip("]")
    item = EvalItem(
        id=f"{path.stem}:{index}",
        problem=str(row["query"]),
        images=[],
        gold=golds[0],
        subset={"source": _source(row, path)},
        meta={"golds": golds},
    )
    if row.get("image") is not None:
        return Built(item, [row["image"]])
    require(row, "imgname")
    png = path.parent / "png"
    return Built(item, [f"png/{row['imgname']}" if png.is_dir() else str(row["imgname"])])


def load(data_path: Path, options: LoadOptions) -> Loaded:
    files = find_data_files(data_path, options.split, "chartqa")
    return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="chartqa")
