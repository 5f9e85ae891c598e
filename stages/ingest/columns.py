"""Which column (or JSON key) plays which role in a source, per layout, with errors that help.

Each layout lists candidate names per role; ``IngestConfig.columns`` overrides them. A missing
required role is a file-level ``InputDataError`` that names the file, the names looked for and the
columns found, e.g. ``data.parquet: no question column (looked for problem, question, query);
found: img, text``. Label-bearing columns never go to ``metadata``: labels are only ever kept in
``oracle_answer``, which training does not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from mmupt.errors import InputDataError
from schemas.ingest import ColumnMap

QUESTION = ("problem", "question", "query")
SOURCE_ID = ("id", "pid", "ID", "sample_index", "question_id", "qid")
PATH_IMAGES = ("images", "image", "image_path", "decoded_image", "file_name", "file", "filename")
LABEL_LIKE = frozenset(
    {
        "answer",
        "solution",
        "label",
        "labels",
        "gt",
        "ground_truth",
        "gold",
        "rationale",
        "sibling_answer",
        "sibling_problem",
    }
)  # sibling_*: the world's first-SFT material (a second labelled question per image)


@dataclass(frozen=True)
class Roles:
    """Candidate names per role for one layout; required roles must be found."""

    problem: tuple[str, ...]
    images: tuple[str, ...]
    answer: tuple[str, ...] = ("answer",)
    solution: tuple[str, ...] = ()
    solution_required: bool = False
    images_by_type: bool = False  # hf_parquet: every image-typed column is an image column


LAYOUT_ROLES: dict[str, Roles] = {
    "mmupt_parquet": Roles(problem=("problem",), images=("images",)),
    "geoqa_r1v": Roles(
        problem=("problem",), images=("image",), answer=(), solution=("solution",), solution_required=True
    ),
    "hf_parquet": Roles(problem=QUESTION, images=PATH_IMAGES, images_by_type=True),
    "json": Roles(problem=QUESTION, images=PATH_IMAGES),
    "folder": Roles(problem=QUESTION, images=PATH_IMAGES),
    "world": Roles(problem=("problem",), images=("images",)),
}


@dataclass(frozen=True)
class ColumnPlan:
    problem: str
    images: tuple[str, ...]
    answer: str | None
    solution: str | None
    source_id: str | None
    split: str | None
    extras: tuple[str, ...]  # Parquet: the columns kept in metadata
    excluded: frozenset[str]  # JSON rows: keys never copied to metadata (roles and labels)

    @property
    def columns(self) -> list[str]:
        named = [
            self.problem,
            *self.images,
            self.answer,
            self.solution,
            self.source_id,
            self.split,
            *self.extras,
        ]
        return list(dict.fromkeys(name for name in named if name is not None))


def is_image_type(dtype: pa.DataType) -> bool:
    """Arrow types that hold image bytes: binary, HF Image ``{bytes, path}`` structs, lists of them."""
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return True
    if pa.types.is_struct(dtype):
        return dtype.get_field_index("bytes") >= 0
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return is_image_type(dtype.value_type)
    return False


def _holds_binary(dtype: pa.DataType) -> bool:
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return True
    if pa.types.is_struct(dtype):
        return any(_holds_binary(dtype.field(i).type) for i in range(dtype.num_fields))
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return _holds_binary(dtype.value_type)
    return False


def _found(names: Mapping[str, object]) -> str:
    return ", ".join(names) or "(none)"


def _pick(
    role: str,
    word: str,
    override: str | None,
    candidates: tuple[str, ...],
    names: Mapping[str, object],
    where: str,
) -> str | None:
    if override is not None:
        if override not in names:
            raise InputDataError(
                f"{where}: {word} column {override!r} (config columns.{role}) not found; found: {_found(names)}"
            )
        return override
    return next((name for name in candidates if name in names), None)


def _missing(role: str, word: str, looked: str, names: Mapping[str, object], where: str) -> InputDataError:
    return InputDataError(
        f"{where}: no {word} column (looked for {looked}); found: {_found(names)}. "
        f"Set columns.{role} in the ingest config, or pass --layout if the layout was misdetected"
    )


def plan_columns(
    layout: str, names: Mapping[str, pa.DataType | None], mapping: ColumnMap, where: str
) -> ColumnPlan:
    """Resolve every role of ``layout`` against the columns ``names`` (types None for JSON keys)."""
    roles = LAYOUT_ROLES[layout]
    problem = _pick("problem", "question", mapping.problem, roles.problem, names, where)
    if problem is None:
        raise _missing("problem", "question", ", ".join(roles.problem), names, where)

    if mapping.images is not None:
        images = tuple(name for name in mapping.images if _pick("images", "image", name, (), names, where))
    else:
        typed = ()
        if roles.images_by_type:
            typed = tuple(name for name, dtype in names.items() if dtype is not None and is_image_type(dtype))
        first = _pick("images", "image", None, roles.images, names, where)
        images = typed or ((first,) if first else ())
    if not images:
        looked = ", ".join(roles.images)
        if roles.images_by_type:
            looked = "binary or {bytes, path} struct columns, then " + looked
        raise _missing("images", "image", looked, names, where)

    answer = _pick("answer", "answer", mapping.answer, roles.answer, names, where)
    solution = _pick("solution", "solution", mapping.solution, roles.solution, names, where)
    if roles.solution_required and solution is None:
        raise _missing("solution", "solution", ", ".join(roles.solution), names, where)
    source_id = _pick("id", "id", mapping.id, SOURCE_ID, names, where)
    split = "split" if "split" in names else None

    excluded = (
        frozenset(name for name in (problem, *images, answer, solution, source_id, split) if name)
        | LABEL_LIKE
    )
    extras = tuple(
        name
        for name, dtype in names.items()
        if name not in excluded
        and not name.startswith("__")  # pandas index columns
        and not (dtype is not None and _holds_binary(dtype))
    )
    return ColumnPlan(problem, images, answer, solution, source_id, split, extras, excluded)
