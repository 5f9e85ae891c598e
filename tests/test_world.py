"""The embedded world: determinism, stable splits, answers that match the pixels, the artifact, the CLI.

Answers are re-derived from the rendered PNG (connected blobs of each palette colour, classified
by how much of their bounding box they fill; digits from which seven-segment bars are inked), so
a renderer that draws something other than what the question is about fails here.
"""

from __future__ import annotations

import io
import re
from collections import Counter

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from flows.app import app
from flows.commands.world import world_command
from mmupt.errors import ConfigError
from mmupt.store import read_manifest, read_table
from schemas.base import load_config
from schemas.world import WorldConfig
from stages import world
from stages.world import (
    BACKGROUND,
    CELL,
    COLORS,
    SEGMENTS,
    WorldExample,
    _segment_rects,
    generate_world,
    iter_world,
    render_example,
)

SMALL = {"n_sft": 30, "n_heldout": 20, "n_unlabeled": 20, "n_dev": 10}


def small(**changes: object) -> WorldConfig:
    return WorldConfig(**{"seed": 7, **SMALL, **changes})


def pixels(example: WorldExample) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(example.image)).convert("RGB"))


# ---------------------------------------------------------------------------- pixel decoding


def blobs(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """4-connected components of ``mask`` as (area, top, left, bottom, right)."""
    seen = np.zeros_like(mask, dtype=bool)
    found = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        stack = [(y0, x0)]
        seen[y0, x0] = True
        area, top, left, bottom, right = 0, y0, x0, y0, x0
        while stack:
            y, x = stack.pop()
            area += 1
            top, left, bottom, right = min(top, y), min(left, x), max(bottom, y), max(right, x)
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        found.append((area, top, left, bottom, right))
    return found


def shapes_in_pixels(array: np.ndarray) -> Counter[tuple[str, str]]:
    """(colour, shape) -> how many separate blobs of it the image holds."""
    seen: Counter[tuple[str, str]] = Counter()
    for name, rgb in COLORS.items():
        for area, top, left, bottom, right in blobs((array == rgb).all(axis=-1)):
            fill = area / ((bottom - top + 1) * (right - left + 1))
            shape = "square" if fill > 0.95 else "circle" if fill > 0.65 else "triangle"
            seen[(name, shape)] += 1
    return seen


def digits_in_pixels(example: WorldExample, array: np.ndarray) -> list[int]:
    """Read each digit glyph from which of its seven segments are inked (centre pixel of each bar)."""
    lookup = {frozenset(lit): value for value, lit in SEGMENTS.items()}
    values = []
    for item in example.items:
        if item.kind != "digit":
            continue
        lit = set()
        for name, (x0, y0, x1, y1) in _segment_rects(item.box).items():
            # sample a bar's middle, away from the corners that neighbouring bars share
            cy, cx = ((y0 + y1) // 2, (x0 + x1) // 2)
            if tuple(array[cy, cx]) != BACKGROUND:
                lit.add(name)
        values.append(lookup[frozenset(lit)])
    return values


def truth_from_pixels(example: WorldExample) -> str:
    """The correct value (not letter) of ``example``, computed from its image and question only."""
    array = pixels(example)
    shapes = shapes_in_pixels(array)
    problem = example.problem
    if example.task == "count":
        color, shape = re.search(r"How many (\w+) (\w+)s are", problem).groups()
        return str(shapes[(color, shape)])
    if example.task == "total":
        return str(sum(shapes.values()))
    per_colour = Counter()
    for (color, _), n in shapes.items():
        per_colour[color] += n
    if example.task == "compare":
        first, second = (
            re.search(r"more (\w+) shapes or (\w+) shapes", problem)  # v1
            or re.search(r"more shapes, (\w+) or (\w+)\?", problem)  # v2
        ).groups()
        assert per_colour[first] != per_colour[second]
        return first if per_colour[first] > per_colour[second] else second
    if example.task == "diff":
        more, fewer = re.search(r"How many more (\w+) shapes than (\w+) shapes", problem).groups()
        return str(per_colour[more] - per_colour[fewer])
    values = digits_in_pixels(example, array)
    return str(sum(values)) if example.task == "sum" else str(max(values))


def graded_value(example: WorldExample) -> str:
    """The value the answer column stands for: itself, or the option its letter points at."""
    if example.choices is None:
        return example.answer
    return example.choices["ABCD".index(example.answer)]


# ---------------------------------------------------------------------------- determinism


def test_same_seed_is_byte_identical_and_other_seed_differs() -> None:
    first = list(iter_world(small()))
    again = list(iter_world(small()))
    other = list(iter_world(small(seed=8)))
    assert [(e.id, e.image, e.problem, e.solution) for e in first] == [
        (e.id, e.image, e.problem, e.solution) for e in again
    ]
    assert {e.id for e in first}.isdisjoint({e.id for e in other})


def test_heldout_rows_do_not_depend_on_other_split_sizes() -> None:
    base = [e for e in iter_world(small()) if e.split == "heldout"]
    resized = [e for e in iter_world(small(n_sft=3, n_unlabeled=50)) if e.split == "heldout"]
    assert [(e.id, e.image) for e in base] == [(e.id, e.image) for e in resized]
    longer = [e for e in iter_world(small(n_heldout=25)) if e.split == "heldout"]
    assert [e.id for e in longer[:20]] == [e.id for e in base]  # growing a split keeps its prefix
    assert render_example(small(), "sft", 4) == render_example(small(n_sft=500), "sft", 4)


def test_dev_split_comes_last_and_leaves_every_other_row_unchanged(tmp_path) -> None:
    """Adding dev rows (diagnostics and gate) must not move a single heldout/unlabeled/sft row."""
    without = list(iter_world(small(n_dev=0)))
    with_dev = list(iter_world(small(n_dev=12)))
    others = [e for e in with_dev if e.split != "dev"]
    assert [(e.split, e.id, e.image, e.problem, e.answer) for e in others] == [
        (e.split, e.id, e.image, e.problem, e.answer) for e in without
    ]
    dev = [e for e in with_dev if e.split == "dev"]
    assert len(dev) == 12 and {e.id for e in dev}.isdisjoint({e.id for e in without})
    assert with_dev[-12:] == dev  # generated last
    longer = [e.id for e in iter_world(small(n_dev=15)) if e.split == "dev"]
    assert longer[:12] == [e.id for e in dev]  # growing dev keeps its prefix
    manifest = generate_world(small(n_dev=4), tmp_path / "world")
    assert manifest.stats["rows"]["dev"] == 4 and sum(manifest.stats["tasks"]["dev"].values()) == 4
    # nor the tokenizer the tiny model is built with (so nor the model)
    from stages.bootstrap import world_texts

    generate_world(small(n_dev=0), tmp_path / "no-dev")
    assert list(world_texts(tmp_path / "world")) == list(world_texts(tmp_path / "no-dev"))


def test_the_campaign_ingest_of_the_world_leaves_dev_rows_out(tmp_path) -> None:
    """Round 0 ingests the world with ``splits: [unlabeled]``: dev rows never become training prompts."""
    import json

    from schemas.ingest import IngestConfig
    from stages.ingest import run_ingest

    generate_world(small(n_sft=3, n_heldout=4, n_unlabeled=5, n_dev=6), tmp_path / "world")
    config = IngestConfig(splits=["unlabeled"], progress=False)  # as flows/campaign.py:bootstrap_round
    manifest = run_ingest([tmp_path / "world"], tmp_path / "ingest", config, layout="world")
    assert manifest.stats["rows_accepted"] == 5 and manifest.stats["skipped_by_split"] == 3 + 4 + 6
    world_rows = read_table(tmp_path / "world", "world").to_pylist()
    unlabeled = {r["id"] for r in world_rows if r["split"] == "unlabeled"}
    samples = read_table(tmp_path / "ingest", "samples").to_pylist()
    assert {json.loads(r["metadata"])["source_id"] for r in samples} == unlabeled


def test_splits_never_share_ids() -> None:
    examples = list(iter_world(small()))
    ids = [e.id for e in examples]
    assert len(ids) == len(set(ids)) == 80
    assert Counter(e.split for e in examples) == {"sft": 30, "heldout": 20, "unlabeled": 20, "dev": 10}


def test_a_colliding_draw_is_redrawn_with_the_next_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    real = world.render_example

    def clash(config: WorldConfig, split: str, index: int, attempt: int = 0) -> WorldExample:
        if (split, index, attempt) == ("unlabeled", 0, 0):
            return real(config, "heldout", 0)  # same id as a row generated before it
        return real(config, split, index, attempt)

    monkeypatch.setattr(world, "render_example", clash)
    examples = list(iter_world(small()))
    unlabeled0 = next(e for e in examples if e.split == "unlabeled")
    assert unlabeled0 == real(small(), "unlabeled", 0, attempt=1)
    assert len({e.id for e in examples}) == len(examples)


# ---------------------------------------------------------------------------- correctness


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_answers_match_what_is_drawn(difficulty: int, version: int) -> None:
    cfg = small(difficulty=difficulty, version=version, multiple_choice_share=0.5 if version == 1 else 0.0)
    for index in range(48):  # 8 rows of each task
        example = render_example(cfg, "heldout", index)
        assert graded_value(example) == truth_from_pixels(example), example.problem


def test_object_pixels_have_their_colour_and_the_background_is_white() -> None:
    example = render_example(small(tasks=["count"]), "sft", 0)
    array = pixels(example)
    assert array.shape == (112, 112, 3)
    painted = np.zeros(array.shape[:2], dtype=bool)
    for item in example.items:
        x, y, w, h = item.box
        # the middle of the box is inside a circle, a square and an upward triangle alike
        assert tuple(array[y + h // 2, x + w // 2]) == COLORS[item.color]
        painted[y : y + h, x : x + w] = True
    assert (array[~painted] == BACKGROUND).all()
    wanted = re.search(r"How many (\w+) (\w+)s", example.problem).groups()
    assert example.answer == str(sum((i.color, i.kind) == wanted for i in example.items))


def test_multiple_choice_rows_hold_the_right_value_exactly_once() -> None:
    cfg = small(version=1, multiple_choice_share=1.0)
    examples = [render_example(cfg, "sft", i) for i in range(40)]
    assert all(e.choices is not None for e in examples)
    letters = Counter()
    for e in examples:
        assert e.answer in "ABCD"[: len(e.choices)]
        letters[e.answer] += 1
        truth = truth_from_pixels(e)
        assert e.choices.count(truth) == 1 and e.choices["ABCD".index(e.answer)] == truth
        listed = " ".join(f"({letter}) {text}" for letter, text in zip("ABCD", e.choices, strict=False))
        assert e.problem.endswith(f"\nChoices: {listed}")
    assert len(letters) >= 3  # the correct option is not always in the same place
    ranks = Counter(
        sorted(int(c) for c in e.choices).index(int(graded_value(e))) for e in examples if e.task != "compare"
    )
    assert set(ranks) == {0, 1, 2, 3}  # nor always the middle value: no "pick the median" shortcut
    free = [
        render_example(small(version=1, multiple_choice_share=0.0, tasks=["sum"]), "sft", i)
        for i in range(10)
    ]
    assert all(e.choices is None and e.answer.isdigit() for e in free)


@pytest.mark.parametrize(("version", "max_words"), [(1, 25), (2, 40)])
def test_problems_and_solutions_follow_the_templates(version: int, max_words: int) -> None:
    for e in iter_world(small(version=version)):
        assert e.problem.startswith("<image>") and e.problem.count("<image>") == 1
        assert e.solution.endswith(f"\\boxed{{{e.answer}}}")
        assert len(e.solution.split()) <= max_words
        assert e.difficulty == 1


def test_v2_rationales_take_several_paths_and_box_what_they_state_last() -> None:
    """Self-consistency needs several decompositions per task, each reaching its result before the box."""
    cfg = small(n_sft=360, tasks=["count", "total", "compare", "sum", "max", "diff"])
    paths: dict[str, Counter[str]] = {}
    for e in (render_example(cfg, "sft", i) for i in range(360)):
        assert e.choices is None and e.path is not None
        paths.setdefault(e.task, Counter())[e.path] += 1
        body = e.solution.rsplit("\\boxed", 1)[0]
        stated = re.findall(r"-?\d+|red|blue|green|yellow", body)
        assert stated[-1] == e.answer, e.solution  # the box copies the last stated result
        if e.task == "compare":  # no path opens with its conclusion
            first = re.search(r"more shapes, (\w+) or", e.problem).group(1)
            assert e.solution.lower().split()[0] in (first, "pairing")
    assert set(paths) == {"count", "total", "compare", "sum", "max", "diff"}
    for task, used in paths.items():
        assert len(used) >= 3 and min(used.values()) >= 10, (task, used)


def test_version_rules_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="do not exist in world version 1"):
        WorldConfig(version=1, tasks=["diff"])
    with pytest.raises(ValueError, match="free-form"):
        WorldConfig(version=2, multiple_choice_share=0.3)
    with pytest.raises(ValueError, match="version"):
        WorldConfig(version=3)
    assert WorldConfig(version=1).multiple_choice_share == 0.3 and "diff" not in WorldConfig(version=1).tasks


def test_higher_difficulty_means_more_objects() -> None:
    def mean_objects(difficulty: int) -> float:
        cfg = small(difficulty=difficulty, tasks=["count", "total", "compare"])
        return float(np.mean([len(render_example(cfg, "sft", i).items) for i in range(60)]))

    easy, medium, hard = mean_objects(1), mean_objects(2), mean_objects(3)
    assert easy < medium < hard


def test_level_one_snaps_shapes_to_token_cells_and_keeps_digits_apart() -> None:
    grid = [render_example(small(tasks=["count", "total"]), "sft", i) for i in range(10)]
    for item in (i for e in grid for i in e.items):
        x, y, w, h = item.box
        assert ((x + w // 2) % CELL, (y + h // 2) % CELL) == (CELL // 2, CELL // 2)
    for difficulty in (1, 2, 3):
        for index in range(20):
            digits = [
                i.box
                for i in render_example(small(difficulty=difficulty, tasks=["max"]), "sft", index).items
                if i.kind == "digit"
            ]
            for a, b in ((a, b) for a in digits for b in digits if a[0] < b[0]):
                if a[1] < b[1] + b[3] and b[1] < a[1] + a[3]:  # side by side: must not read as one number
                    assert b[0] - (a[0] + a[2]) >= min(a[3], b[3]) // 4 - 1


# ---------------------------------------------------------------------------- config


def test_config_rejects_bad_values_and_unknown_keys(tmp_path) -> None:
    for bad, key in (
        ("difficulty: 4\n", "difficulty"),
        ("dificulty: 2\n", "dificulty"),
        ("image_size: 100\n", "image_size"),
    ):
        path = tmp_path / "world.yaml"
        path.write_text(bad)
        with pytest.raises(ConfigError, match=key):
            load_config(WorldConfig, path)
    with pytest.raises(ValueError):
        WorldConfig(tasks=["count", "count"])
    with pytest.raises(ValueError):
        WorldConfig(tasks=["colour"])
    assert load_config(WorldConfig, None, {"seed": 3}).seed == 3


# ---------------------------------------------------------------------------- artifact + CLI


def test_artifact_is_readable_through_the_store(tmp_path) -> None:
    cfg = small(tasks=["count", "sum"])
    manifest = generate_world(cfg, tmp_path / "world")
    table = read_table(tmp_path / "world", "world")
    assert manifest.kind == "world" and table.num_rows == manifest.rows("world") == 80
    assert manifest.stats["rows"] == {"sft": 30, "heldout": 20, "unlabeled": 20, "dev": 10}
    assert manifest.stats["tasks"]["heldout"] == {"count": 10, "sum": 10}
    rows = table.to_pylist()
    assert [r["split"] for r in rows] == ["sft"] * 30 + ["heldout"] * 20 + ["unlabeled"] * 20 + ["dev"] * 10
    first = rows[30]
    expected = render_example(cfg, "heldout", 0)
    assert (first["id"], first["images"], first["answer"]) == (expected.id, [expected.image], expected.answer)
    assert Image.open(io.BytesIO(first["images"][0])).format == "PNG"
    assert read_manifest(tmp_path / "world").content_hash == manifest.content_hash


def test_cli_writes_the_artifact_and_applies_the_seed(tmp_path) -> None:
    assert "world" in {c.name for c in app.registered_commands}
    group = typer.Typer()  # a group of its own: a one-command typer app would drop the sub-command name
    group.callback()(lambda: None)
    group.command("world")(world_command)
    config = tmp_path / "world.yaml"
    config.write_text("n_sft: 5\nn_heldout: 5\nn_unlabeled: 5\nn_dev: 5\nseed: 1\n")
    result = CliRunner().invoke(
        group, ["world", "--out", str(tmp_path / "w"), "--config", str(config), "--seed", "9"]
    )
    assert result.exit_code == 0, result.output
    assert "heldout" in result.output and "20 rows" in result.output
    ids = read_table(tmp_path / "w", "world").column("id").to_pylist()
    assert ids[5] == render_example(WorldConfig(seed=9, n_sft=5, n_heldout=5, n_unlabeled=5), "heldout", 0).id


def test_sibling_questions_differ_and_are_answered_from_the_scene():
    config = WorldConfig(seed=5)
    for index in range(40):
        example = render_example(config, "sft", index)
        stem = example.problem.split("\n")[0]
        assert example.sibling_problem.startswith("<image>") and example.sibling_problem != stem
        question = example.sibling_problem.removeprefix("<image>")
        digits = [i.value for i in example.items if i.kind == "digit"]
        shapes = [(i.color, i.kind) for i in example.items if i.kind != "digit"]
        if question.startswith("What is the sum"):
            expected = sum(digits)
        elif question.startswith("What is the largest"):
            expected = max(digits)
        elif question.startswith("What is the smallest"):
            expected = min(digits)
        elif question == "How many shapes are in the image?":
            expected = len(shapes)
        else:
            color, kind = question.split()[2], question.split()[3].removesuffix("s")
            expected = shapes.count((color, kind))
        assert example.sibling_answer == str(expected)
