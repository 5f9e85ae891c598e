"""IconQA (lupantech/IconQA, lmms-lab/ICON-QA): sub-tasks choose_txt, choose_img, fill_in_blank.

Layouts read:
1. the released problem folders ``<split>/<ques_type>/<pid>/data.json`` (+ ``image.png`` and, for
   choose_img, the choice images named in ``choices``), e.g. ``iconqa_data/iconqa/test/...``;
2. the repository's ``problems.json`` (``pid -> {question, choices, answer, ques_type, split, ...}``)
   with images in that same folder tree;
3. Hub Parquet (``query_image``, ``choice_image_0..4``, ``question``, ``choices``, ``answer``,
   ``ques_type``, ``question_id``, ``grade``).
For choose_* the gold is the option letter (``answer`` is a 0-based index, or the option text);
choose_img options are images, shown after the question image and named "image 1", "image 2", ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmupt.errors import InputDataError
from stages.evaluation.loaders.common import (
    Built,
    DataFiles,
    Loaded,
    RowProblem,
    clean_gold,
    collect,
    find_data_files,
    letters,
    read_json_rows,
    require,
)
from stages.evaluation.types import EvalItem, LoadOptions

SUBSET_KEY = "ques_type"
QUES_TYPES = ("choose_txt", "choose_img", "fill_in_blank")


def _choices(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _gold_letter(answer: Any, choices: list[str]) -> str:
    text = str(answer).strip()
    if text in choices:
        return letters(len(choices))[choices.index(text)]
    if text.isdigit() and int(text) < len(choices):
        return letters(len(choices))[int(text)]
    raise RowProblem("bad_value", f"answer {text!r} is neither an option index nor an option of {choices}")


def build(row: dict[str, Any], label: str, path: Path) -> Built:
    require(row, "question", "answer", "ques_type")
    ques_type = str(row["ques_type"])
    if ques_type not in QUES_TYPES:
        raise RowProblem("bad_value", f"ques_type {ques_type!r} is not one of {', '.join(QUES_TYPES)}")
    pid = row.get("question_id") or row.get("pid") or row.get("_key") or row.get("_pid")
    if pid is None:
        raise RowProblem("missing_field", "no question_id / pid")
    choices = _choices(row.get("choices"))
    question = str(row["question"])
    image_refs: list[Any] = [row.get("query_image") or row.get("_image") or "image.png"]
    if ques_type == "fill_in_blank":
        gold, problem = clean_gold(row["answer"]), question
    elif ques_type == "choose_txt":
        gold = _gold_letter(row["answer"], choices)
        listed = "\n".join(
            f"({letter}) {c}" for letter, c in zip(letters(len(choices)), choices, strict=True)
        )
        problem = f"{question}\nChoices:\n{listed}"
    else:
        hub_images = [row[f"choice_image_{i}"] for i in range(5) if row.get(f"choice_image_{i}") is not None]
        refs = hub_images or list(choices)  # folder layouts: file names inside the problem folder
        gold = (
            _gold_letter(row["answer"], choices)
            if choices
            else _gold_letter(row["answer"], [str(i) for i in range(len(refs))])
        )
        listed = "\n".join(f"({letter}) image {i + 1}" for i, letter in enumerate(letters(len(refs))))
        problem = f"{question}\nThe first image is the question; the options are the next images:\n{listed}"
        image_refs += refs
        choices = [f"image {i + 1}" for i in range(len(refs))]
    item = EvalItem(
        id=str(pid),
        problem=problem,
        images=[],
        gold=gold,
        subset={"ques_type": ques_type, "grade": row.get("grade")},
        meta={"ques_type": ques_type, "choices": choices},
    )
    return Built(item, image_refs, base=Path(row["_dir"]) if row.get("_dir") else None)


def _folder_rows(root: Path, split: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """Rows of the problem-folder layout: ``<split>/<ques_type>/<pid>/data.json``."""
    for data_json in sorted(
        root.glob(f"**/{split}/*/*/data.json"), key=lambda p: (p.parent.parent.name, _num(p.parent.name))
    ):
        pid_dir = data_json.parent
        try:
            row = json.loads(data_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputDataError(f"{data_json}: line {err.lineno}: not valid JSON ({err.msg})") from None
        row.setdefault("ques_type", pid_dir.parent.name)
        yield (
            data_json,
            f"{pid_dir.parent.name}/{pid_dir.name}",
            {**row, "_pid": pid_dir.name, "_dir": str(pid_dir)},
        )


def _problems_rows(problems: Path, root: Path, split: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    folders = {
        p.parent.parent.name + "/" + p.parent.name: p.parent for p in root.glob(f"**/{split}/*/*/image.png")
    }
    for label, row in read_json_rows(problems):
        if row.get("split", split) != split:
            continue
        pid = str(row.get("_key"))
        folder = folders.get(f"{row.get('ques_type')}/{pid}")
        yield problems, label, {**row, "_pid": pid, **({"_dir": str(folder)} if folder else {})}


def _num(name: str) -> tuple[int, str]:
    return (int(name), name) if name.isdigit() else (1 << 62, name)


def load(data_path: Path, options: LoadOptions) -> Loaded:
    data_path = Path(data_path)
    if data_path.is_dir():
        problems = sorted(data_path.glob("**/problems.json"))
        if problems:
            files = DataFiles("json", problems[:1], data_path)
            rows = _problems_rows(problems[0], data_path, options.split)
            return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="iconqa", rows=rows)
        if next(data_path.glob(f"**/{options.split}/*/*/data.json"), None) is not None:
            files = DataFiles("json", [data_path], data_path)
            rows = _folder_rows(data_path, options.split)
            return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="iconqa", rows=rows)
    files = find_data_files(data_path, options.split, "iconqa")
    return collect(files, build, options, subset_key=SUBSET_KEY, benchmark="iconqa")
