"""Tiny benchmark fixtures built in code, in both public layouts, with real field names.

Each ``make_<benchmark>(root, layout)`` writes a handful of rows either as the authors'
repository layout (JSON/JSONL + image files) or as the Hugging Face Hub export
(``data/<split>-00000-of-00001.parquet`` with images as ``{bytes, path}`` structs) and returns
the path to pass as ``--data``. Field names follow ``../shared/benchmarks/README.md`` exactly,
spaces and hyphens included. Images are drawn with PIL.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from stages.evaluation.types import EvalItem, Verdict

REPO, HUB = "repo", "hub"
LAYOUTS = (REPO, HUB)


def png(seed: int = 0, size: int = 56) -> bytes:
    """A small distinct PNG (a coloured square on white)."""
    image = Image.new("RGB", (size, size), "white")
    colour = ((seed * 70) % 256, (seed * 130 + 60) % 256, (seed * 30 + 120) % 256)
    ImageDraw.Draw(image).rectangle((8, 8, 8 + 10 + seed % 30, 40), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def struct(data: bytes, path: str) -> dict[str, Any]:
    return {"bytes": data, "path": path}


def write_hub(root: Path, split: str, rows: list[dict[str, Any]]) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "data" / f"{split}-00000-of-00001.parquet")
    return root


def write_images(root: Path, images: dict[str, bytes]) -> None:
    for relative, data in images.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# ---------------------------------------------------------------------------- MathVista
MATHVISTA_ROWS = [
    {
        "pid": "1",
        "question": "Angle BOC = ?",
        "choices": ["135°", "140°", "145°", "150°"],
        "unit": None,
        "precision": None,
        "answer": "145°",
        "question_type": "multi_choice",
        "answer_type": "text",
        "metadata": {
            "category": "math-targeted-vqa",
            "task": "geometry problem solving",
            "context": "geometry diagram",
            "grade": "high school",
            "skills": ["geometry reasoning", "algebraic reasoning"],
            "language": "english",
            "source": "GeoQA+",
            "split": "testmini",
        },
    },
    {
        "pid": "2",
        "question": "What is the total volume of the measuring cup?",
        "choices": None,
        "unit": "g",
        "precision": None,
        "answer": "1000",
        "question_type": "free_form",
        "answer_type": "integer",
        "metadata": {
            "category": "general-vqa",
            "task": "visual question answering",
            "context": "natural image",
            "grade": "not applicable",
            "skills": ["numeric commonsense"],
            "language": "english",
            "source": "TextVQA",
            "split": "testmini",
        },
    },
    {
        "pid": "3",
        "question": "By what distance d is the spring compressed?",
        "choices": None,
        "unit": None,
        "precision": 1,
        "answer": "1.2",
        "question_type": "free_form",
        "answer_type": "float",
        "metadata": {
            "category": "math-targeted-vqa",
            "task": "textbook question answering",
            "context": "scientific figure",
            "grade": "college",
            "skills": ["scientific reasoning"],
            "language": "english",
            "source": "SciBench",
            "split": "testmini",
        },
    },
    {
        "pid": "4",
        "question": "What fraction of the bar is shaded?",
        "choices": None,
        "unit": None,
        "precision": 2,
        "answer": "0.21",
        "question_type": "free_form",
        "answer_type": "float",
        "metadata": {
            "category": "math-targeted-vqa",
            "task": "figure question answering",
            "context": "bar chart",
            "grade": "daily life",
            "skills": ["statistical reasoning"],
            "language": "english",
            "source": "FigureQA",
            "split": "testmini",
        },
    },
    {
        "pid": "5",
        "question": "Which years have the highest values?",
        "choices": None,
        "unit": None,
        "precision": None,
        "answer": "[2014, 2016]",
        "question_type": "free_form",
        "answer_type": "list",
        "metadata": {
            "category": "general-vqa",
            "task": "figure question answering",
            "context": "line plot",
            "grade": "daily life",
            "skills": ["statistical reasoning"],
            "language": "english",
            "source": "ChartQA",
            "split": "testmini",
        },
    },
]


def make_mathvista(root: Path, layout: str) -> Path:
    if layout == REPO:
        records = {r["pid"]: {**r, "image": f"images/{r['pid']}.png"} for r in MATHVISTA_ROWS}
        root.mkdir(parents=True, exist_ok=True)
        (root / "testmini.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        write_images(root, {f"images/{r['pid']}.png": png(int(r["pid"])) for r in MATHVISTA_ROWS})
        return root
    from stages.evaluation.loaders.mathvista import build_query

    rows = [
        {
            **r,
            "image": f"images/{r['pid']}.png",
            "decoded_image": struct(png(int(r["pid"])), f"{r['pid']}.png"),
            "precision": None if r["precision"] is None else float(r["precision"]),
            "query": build_query(r),
        }
        for r in MATHVISTA_ROWS
    ]
    return write_hub(root, "testmini", rows)


# ---------------------------------------------------------------------------- MathVerse
_CHOICES = "Choices:\nA:40°\nB:60°\nC:120°\nD:140°"
MATHVERSE_ROWS = [
    {
        "sample_index": "1",
        "problem_index": "1",
        "problem_version": "Text Dominant",
        "question": f"In triangle ABC, angle A = 80, angle B = 40. Find angle C.\n{_CHOICES}",
        "answer": "B",
        "question_type": "multi-choice",
    },
    {
        "sample_index": "2",
        "problem_index": "1",
        "problem_version": "Vision Only",
        "question": "",
        "answer": "B",
        "question_type": "multi-choice",
    },
    {
        "sample_index": "3",
        "problem_index": "2",
        "problem_version": "Text Lite",
        "question": "How long is the ramp?",
        "answer": "4.4 m",
        "question_type": "free-form",
    },
]
MATHVERSE_TEXT_ONLY = [
    {
        "sample_index": "1",
        "problem_index": "3",
        "problem_version": "Text Only",
        "question": "Which is the largest?\nChoices:\nA.1\nB.2\nC.3",
        "answer": "(C)",
        "question_type": "multi-choice",
    },
]


def _mathverse_record(row: dict[str, Any], image: str) -> dict[str, Any]:
    question_for_eval = row["question"] or f"Find angle C.\n{_CHOICES}"
    return {
        **row,
        "image": image,
        "metadata": {
            "split": "testmini",
            "source": "GeoQA",
            "subject": "Plane Geometry",
            "subfield": "Angle",
        },
        "query_wo": f"Please directly answer the question.\nQuestion: {row['question']}",
        "query_cot": f"Please first conduct reasoning, and then answer the question.\nQuestion: {row['question']}",
        "question_for_eval": question_for_eval,
    }


def make_mathverse(root: Path, layout: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if layout == REPO:
        main = [_mathverse_record(r, f"images/{r['sample_index']}.png") for r in MATHVERSE_ROWS]
        for record in main:
            del record["question_for_eval"]  # the repository JSON has no question_for_eval
        text_only = [_mathverse_record(r, "") for r in MATHVERSE_TEXT_ONLY]
        for record in text_only:
            del record["question_for_eval"]
        (root / "testmini.json").write_text(json.dumps(main, ensure_ascii=False), encoding="utf-8")
        (root / "testmini_text_only.json").write_text(
            json.dumps(text_only, ensure_ascii=False), encoding="utf-8"
        )
        write_images(
            root, {f"images/{r['sample_index']}.png": png(int(r["sample_index"])) for r in MATHVERSE_ROWS}
        )
        return root
    rows = [_mathverse_record(r, struct(png(int(r["sample_index"])), "x.png")) for r in MATHVERSE_ROWS]
    write_hub(root, "testmini", rows)
    text_only = [{**_mathverse_record(r, struct(b"", "")), "image": None} for r in MATHVERSE_TEXT_ONLY]
    pq.write_table(
        pa.Table.from_pylist(text_only), root / "data" / "testmini_text_only-00000-of-00001.parquet"
    )
    return root


# ---------------------------------------------------------------------------- MATH-Vision
MATHVISION_ROWS = [
    {
        "id": "1",
        "question": "How long is the fence?\n<image1>",
        "options": [
            "$6 \\mathrm{~m}$",
            "$8 \\mathrm{~m}$",
            "$10 \\mathrm{~m}$",
            "$11 \\mathrm{~m}$",
            "$12 \\mathrm{~m}$",
        ],
        "answer": "B",
        "solution": None,
        "level": 2,
        "subject": "metric geometry - length",
    },
    {
        "id": "2",
        "question": "What is the area of the grey region?\n<image1>",
        "options": [],
        "answer": "2.5",
        "solution": None,
        "level": 3,
        "subject": "metric geometry - area",
    },
    {
        "id": "3",
        "question": "Which fraction of the circle is shaded?\n<image1>",
        "options": [],
        "answer": "$\\frac{1}{3}$",
        "solution": None,
        "level": 3,
        "subject": "arithmetic",
    },
    {
        "id": "4",
        "question": "Where does the ant end?\n<image1>",
        "options": [],
        "answer": "(3,-4)",
        "solution": None,
        "level": 4,
        "subject": "analytic geometry",
    },
]


def make_mathvision(root: Path, layout: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if layout == REPO:
        (root / "data").mkdir(exist_ok=True)
        lines = [json.dumps({**r, "image": f"images/{r['id']}.jpg"}) for r in MATHVISION_ROWS]
        (root / "data" / "testmini.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_images(root, {f"images/{r['id']}.jpg": png(int(r["id"])) for r in MATHVISION_ROWS})
        return root
    rows = [
        {**r, "image": f"images/{r['id']}.jpg", "decoded_image": struct(png(int(r["id"])), f"{r['id']}.jpg")}
        for r in MATHVISION_ROWS
    ]
    return write_hub(root, "testmini", rows)


# ---------------------------------------------------------------------------- We-Math
# Problems and the verdicts the tests give them (s = one-step, m = multi-step), hand-classified:
#   2steps_1: s=[T,T] m=T -> CM (strict and loose)
#   2steps_2: s=[T,F] m=T -> RM strict, CM loose
#   2steps_3: s=[F,T] m=F -> IK
#   3steps_1: s=[F,F,F] m=T -> RM (strict and loose)
#   3steps_2: s=[T,T,T] m=F -> IG
#   3steps_3: only its first one-step question is present -> incomplete, left out
WEMATH_PLAN: dict[str, tuple[list[bool], bool | None]] = {
    "2steps_1": ([True, True], True),
    "2steps_2": ([True, False], True),
    "2steps_3": ([False, True], False),
    "3steps_1": ([False, False, False], True),
    "3steps_2": ([True, True, True], False),
    "3steps_3": ([True], None),
}


def wemath_rows() -> list[dict[str, Any]]:
    rows, number = [], 0
    for problem, (steps, multi) in WEMATH_PLAN.items():
        k = int(problem[0])
        index = problem.split("_")[1]
        parts = [f"{k}steps_{i + 1}" for i in range(len(steps))] + (
            [f"{k}steps_multi"] if multi is not None else []
        )
        for key in parts:
            number += 1
            suffix = key.split("_")[1]
            rows.append(
                {
                    "ID": problem,
                    "split": "testmini",
                    "knowledge concept": "Circumference of Circles",
                    "question": f"Question {number} of {problem}",
                    "option": "A. 1 cm;B. 1.5 cm;C. 3.14 cm;D. 6.28 cm; E. No correct answer",
                    "answer": "ABCD"[number % 4],
                    "image_path": f"{k}steps/image/{index}-{suffix}.png",
                    "key": key,
                    "question number": number,
                    "knowledge concept description": "C = 2 pi r",
                }
            )
    return rows


def wemath_responses(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Right or wrong letters following WEMATH_PLAN, in the shapes models write."""
    out = {}
    for row in rows:
        steps, multi = WEMATH_PLAN[row["ID"]]
        part = row["key"].split("_")[1]
        right = multi if part == "multi" else steps[int(part) - 1]
        letter = row["answer"] if right else "ABCD"[("ABCD".index(row["answer"]) + 1) % 4]
        shape = row["question number"] % 3
        out[str(row["question number"])] = (
            f"Thinking... \\boxed{{{letter}}}"
            if shape == 0
            else f"<Thought process>: ... <Answer>: <<{letter}>>"
            if shape == 1
            else f"{letter}. because the radius is 1"
        )
    return out


def make_wemath(root: Path, layout: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = wemath_rows()
    if layout == REPO:
        (root / "testmini.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        write_images(root, {r["image_path"]: png(r["question number"]) for r in rows})
        return root
    return write_hub(
        root,
        "testmini",
        [{**r, "image_path": struct(png(r["question number"]), r["image_path"])} for r in rows],
    )


# ---------------------------------------------------------------------------- ChartQA
CHARTQA = {
    "human": [("What is the value of Japan?", "42"), ("Is the line increasing?", "Yes")],
    "augmented": [("What is the share of A?", "0.57"), ("What is the minimum value?", "0")],
}


def make_chartqa(root: Path, layout: str) -> Path:
    if layout == REPO:
        test = root / "test"
        test.mkdir(parents=True, exist_ok=True)
        for source, questions in CHARTQA.items():
            records = [
                {"imgname": f"{source}{i}.png", "query": q, "label": a} for i, (q, a) in enumerate(questions)
            ]
            (test / f"test_{source}.json").write_text(json.dumps(records), encoding="utf-8")
            write_images(test, {f"png/{source}{i}.png": png(i) for i in range(len(questions))})
        return root
    rows = [
        {
            "image": struct(png(i), f"{i}.png"),
            "query": q,
            "label": [a],
            "human_or_machine": int(source == "augmented"),
        }
        for source, questions in CHARTQA.items()
        for i, (q, a) in enumerate(questions)
    ]
    return write_hub(root, "test", rows)


# ---------------------------------------------------------------------------- IconQA
ICONQA = [
    {
        "pid": "11",
        "ques_type": "choose_txt",
        "question": "What colour is the shape?",
        "choices": ["red", "blue", "green"],
        "answer": 1,
        "grade": "grade1",
    },
    {
        "pid": "12",
        "ques_type": "choose_img",
        "question": "Which picture shows two dots?",
        "choices": ["choice_0.png", "choice_1.png"],
        "answer": 0,
        "grade": "grade1",
    },
    {
        "pid": "13",
        "ques_type": "fill_in_blank",
        "question": "How many dots are there?",
        "choices": [],
        "answer": "7",
        "grade": "grade2",
    },
]


def make_iconqa(root: Path, layout: str) -> Path:
    if layout == REPO:
        for row in ICONQA:
            folder = root / "iconqa" / "test" / row["ques_type"] / row["pid"]
            folder.mkdir(parents=True, exist_ok=True)
            record = {k: v for k, v in row.items() if k != "pid"}
            (folder / "data.json").write_text(json.dumps(record), encoding="utf-8")
            write_images(folder, {"image.png": png(int(row["pid"]))})
            if row["ques_type"] == "choose_img":
                write_images(folder, {c: png(i) for i, c in enumerate(row["choices"])})
        return root
    rows = []
    for row in ICONQA:
        hub = {
            "question_id": row["pid"],
            "query_image": struct(png(int(row["pid"])), "image.png"),
            "question": row["question"],
            "ques_type": row["ques_type"],
            "grade": row["grade"],
            "label": "",
            "answer": str(row["answer"]),
        }
        if row["ques_type"] == "choose_txt":
            hub["choices"] = ",".join(row["choices"])
        else:
            hub["choices"] = ""
        for i in range(2):
            hub[f"choice_image_{i}"] = (
                struct(png(i), f"choice_{i}.png") if row["ques_type"] == "choose_img" else None
            )
        rows.append(hub)
    return write_hub(root, "test", rows)


# ---------------------------------------------------------------------------- scorers used by the tests
def slow_score(item: EvalItem, response: str) -> Verdict:
    """A scorer that hangs on the response "hang" (stands in for a pathological response)."""
    if response == "hang":
        time.sleep(600)
    return Verdict(response, True)


def failing_score(item: EvalItem, response: str) -> Verdict:
    if response == "boom":
        raise ValueError("scorer bug")
    return Verdict(response, True)
