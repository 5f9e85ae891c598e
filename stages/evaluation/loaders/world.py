"""The embedded world's labelled splits (``mmupt world`` artifact, table ``world``).

Two benchmarks read it: ``world`` (split ``heldout``, the reported test rows) and ``world-dev``
(split ``dev``, the rows the gate may decide on, so that promotion never looks at the test rows).
The artifact is read through the store (schema-checked); a bare ``world.parquet`` file works too.
Multiple-choice answers are option letters, as everywhere in mmupt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmupt.errors import InputDataError
from mmupt.store import MANIFEST, read_table
from stages.evaluation.loaders.common import (
    Built,
    DataFiles,
    Loaded,
    RowProblem,
    collect,
    read_parquet_rows,
    require,
)
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "task"


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "id", "problem", "answer", "images")
    if not row["images"]:
        raise RowProblem("image_missing", "world row without an image")
    item = EvalItem(
        id=str(row["id"]),
        problem=str(row["problem"]),
        images=[],
        gold=str(row["answer"]).strip(),
        subset={"task": row.get("task"), "difficulty": row.get("difficulty")},
        meta={"choices": row.get("choices")},
    )
    return Built(item, list(row["images"]))


def _all_rows(path: Path) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    if (path / MANIFEST).is_file():
        table = read_table(path, "world")
        source = path / "world.parquet"
        for index, row in enumerate(table.to_pylist()):
            yield source, f"world.parquet:{index}", row
        return
    for label, row in read_parquet_rows(path):
        yield path, label, row


def _rows(path: Path, split: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """The rows of ``split``; none at all is an error (an older world without a ``dev`` split)."""
    found = False
    for source, label, row in _all_rows(path):
        if row.get("split") == split:
            found = True
            yield source, label, row
    if not found:
        raise InputDataError(
            f"{path}: the world has no rows in split {split!r}; regenerate it with n_{split} > 0 "
            "(`mmupt world`, or embedded.world in the campaign config)"
        )


def loader(benchmark: str) -> Callable[[Path, LoadOptions], Loaded]:
    """The load function of one world benchmark (the name only labels errors; the split picks rows)."""

    def load(data_path: Path, options: LoadOptions) -> Loaded:
        data_path = Path(data_path)
        if not ((data_path / MANIFEST).is_file() or (data_path.is_file() and data_path.suffix == ".parquet")):
            raise InputDataError(
                f"{data_path}: not a world artifact (no {MANIFEST}) nor a world .parquet file; run `mmupt world --out DIR`"
            )
        root = data_path if data_path.is_dir() else data_path.parent
        files = DataFiles("parquet", [data_path], root)
        return collect(
            files,
            build,
            options,
            subset_key=SUBSET_KEY,
            benchmark=benchmark,
            rows=_rows(data_path, options.split),
        )

    return load


load = loader("world")
load_dev = loader("world-dev")
