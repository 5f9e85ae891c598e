r"""World v2 questions: every task has several solution paths that read different features.

Why: MM-UPT's self-reward distils the majority of n sampled answers, which only helps where that
majority beats the model's greedy answer (self-consistency). World v1 had one templated step per
task whose answer copied one perceptual token, so the vote *was* the greedy answer and
self-reward could only collapse. Here each SFT rationale picks one of >= 3 decompositions at
random, each writing its intermediate results before ``\boxed{}``:

- ``total``: count by colour, by shape, or by row, with a running total after each part;
- ``count`` (colour + shape): by row (running total), or filter by colour then by shape, or by
  shape then by colour;
- ``compare``: count both colours, pair them off, or count both row by row;
- ``diff`` (how many more X than Y): count and subtract, pair off the leftovers, or row by row;
- ``sum``: add left to right, right to left, or count up from the larger number;
- ``max``: list then pick, compare pairwise, or sort.

A sampled path's errors come from the features it reads (colours, shapes, positions, glyphs), so
errors scatter across paths while right answers agree: the regime a real VLM is in. No path is
a one-token shortcut, and the box always copies the result the path last stated.

Every builder takes the example's RNG and returns the question and its items; the rationale is
chosen *after* the scene is drawn, so a v2 scene depends only on the task's own draws.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stages.world import (
    COLORS,
    SHAPES,
    Item,
    Level,
    _digits_scene,
    _Question,
    _reading_order,
    _scene,
)

ROWS = 4
"""Horizontal bands the "by row" paths count in (one 28-px cell row at 112 px)."""

Path = Callable[[], str]


@dataclass(frozen=True)
class Rationale:
    """The chosen path's name (for tests and diagnostics) and its text, box included."""

    path: str
    text: str


def row_of(item: Item, side: int) -> int:
    """Band 0..3 of the item's centre: what "row 1..4" means in the rationales."""
    _, y, _, h = item.box
    return min(ROWS - 1, (y + h // 2) * ROWS // side)


def running(parts: Sequence[tuple[str, int]]) -> str:
    """``"red 2 (2), blue 1 (3), ..."``: each part's count, then the total so far.

    One two-operand addition per part: a chained sum written as ``2 + 1 + 0 + 1 = 4`` asks a
    tiny model for a four-operand sum in one token, which it does not learn in a short SFT.
    """
    total, out = 0, []
    for name, count in parts:
        total += count
        out.append(f"{name} {count} ({total})")
    return ", ".join(out)


def by_rows(items: Sequence[Item], side: int, keep: Callable[[Item], bool]) -> list[tuple[str, int]]:
    counts = [0] * ROWS
    for item in items:
        if keep(item):
            counts[row_of(item, side)] += 1
    return [(f"row {r + 1}:", c) for r, c in enumerate(counts)]


def choose(rng: random.Random, paths: dict[str, Path], answer: object) -> Rationale:
    """One path, uniformly at random; its text ends with the boxed answer it states last.

    Uniform on purpose: weighting the paths was measured to make greedy decoding commit to the
    favoured path and learn it best, which removed the vote's edge (benchmarks/REPORT.md).
    """
    name = rng.choice(sorted(paths))
    return Rationale(name, f"{paths[name]()}. \\boxed{{{answer}}}")


def _free(stem: str, answer: object, rationale: Rationale) -> _Question:
    return _Question(f"<image>{stem}", str(answer), rationale.text, None)


def shapes_of(items: Sequence[Item]) -> list[Item]:
    return [i for i in items if i.kind != "digit"]


# ---------------------------------------------------------------------------- counting tasks


def total_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    n = rng.randint(1, level.max_count)
    specs = [(rng.choice(list(COLORS)), rng.choice(SHAPES)) for _ in range(n)]
    items = _scene(rng, specs, level, side)
    shapes = shapes_of(items)
    paths: dict[str, Path] = {
        "by_colour": lambda: (
            "By colour: " + running([(c, sum(i.color == c for i in shapes)) for c in COLORS])
        ),
        "by_shape": lambda: (
            "By shape: " + running([(f"{s}s", sum(i.kind == s for i in shapes)) for s in SHAPES])
        ),
        "by_row": lambda: "By row: " + running(by_rows(shapes, side, lambda _i: True)),
    }
    rationale = choose(rng, paths, n)
    return _free("How many shapes are in the image?", n, rationale), items, rationale


def count_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    n = rng.randint(1, level.max_count)
    others = [(c, s) for c in COLORS for s in SHAPES if (c, s) != (color, shape)]
    specs = [(color, shape)] * n + [rng.choice(others) for _ in range(rng.randint(*level.count_distractors))]
    items = _scene(rng, specs, level, side)
    shapes = shapes_of(items)
    n_color = sum(i.color == color for i in shapes)
    n_shape = sum(i.kind == shape for i in shapes)
    target = f"{color} {shape}s"
    paths: dict[str, Path] = {
        "by_row": lambda: (
            f"The {target} by row: "
            + running(by_rows(shapes, side, lambda i: (i.color, i.kind) == (color, shape)))
        ),
        "colour_then_shape": lambda: f"{color.capitalize()} shapes: {n_color}, of them {shape}s: {n}",
        "shape_then_colour": lambda: f"{shape.capitalize()}s: {n_shape}, of them {color}: {n}",
    }
    rationale = choose(rng, paths, n)
    return _free(f"How many {target} are in the image?", n, rationale), items, rationale


def _two_colours(
    rng: random.Random, level: Level, side: int, max_gap: int
) -> tuple[str, str, int, int, list[Item]]:
    """Two colours with different counts (``first`` has n1, ``second`` n2) plus third-colour distractors."""
    first, second = rng.sample(list(COLORS), 2)
    while True:
        n1, n2 = rng.randint(1, level.compare_max), rng.randint(1, level.compare_max)
        if n1 != n2 and abs(n1 - n2) <= max_gap:
            break
    third = [c for c in COLORS if c not in (first, second)]
    specs = [(first, rng.choice(SHAPES)) for _ in range(n1)] + [
        (second, rng.choice(SHAPES)) for _ in range(n2)
    ]
    specs += [(rng.choice(third), rng.choice(SHAPES)) for _ in range(rng.randint(*level.compare_distractors))]
    return first, second, n1, n2, _scene(rng, specs, level, side)


def _row_pairs(items: Sequence[Item], side: int, more: str, fewer: str) -> str:
    """``"row 1: 1 and 0 (1), row 2: ..."``: per row, ``more`` minus ``fewer``, running."""
    shapes = shapes_of(items)
    parts, total = [], 0
    for r in range(ROWS):
        a = sum(i.color == more and row_of(i, side) == r for i in shapes)
        b = sum(i.color == fewer and row_of(i, side) == r for i in shapes)
        total += a - b
        parts.append(f"row {r + 1}: {a} and {b} ({total})")
    return ", ".join(parts)


def compare_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    first, second, n1, n2, items = _two_colours(rng, level, side, level.compare_max_gap)
    # Every path names the colours in the question's order and reaches the winner last: a path that
    # opened with the winner would have to know the answer before its first step.
    winner = first if n1 > n2 else second
    paths: dict[str, Path] = {
        "count_both": lambda: f"{first.capitalize()} {n1}, {second} {n2}, so {winner} has more",
        "pair_off": lambda: (
            f"Pairing {first} with {second} shapes leaves {abs(n1 - n2)} {winner}, so {winner} has more"
        ),
        "by_row": lambda: (
            f"{first.capitalize()} minus {second} by row: {_row_pairs(items, side, first, second)}, "
            f"so {winner} has more"
        ),
    }
    rationale = choose(rng, paths, winner)
    stem = f"Which colour has more shapes, {first} or {second}?"
    return _free(stem, winner, rationale), items, rationale


def diff_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    first, second, n1, n2, items = _two_colours(rng, level, side, level.compare_max)
    more, fewer = (first, second) if n1 > n2 else (second, first)
    n_more, n_fewer = max(n1, n2), min(n1, n2)
    d = n_more - n_fewer
    paths: dict[str, Path] = {
        "subtract": lambda: f"{more.capitalize()} {n_more}, {fewer} {n_fewer}, {n_more} - {n_fewer} = {d}",
        "pair_off": lambda: f"Pairing {more} with {fewer} shapes, the {more} ones left over: {d}",
        "by_row": lambda: f"{more.capitalize()} minus {fewer} by row: {_row_pairs(items, side, more, fewer)}",
    }
    rationale = choose(rng, paths, d)
    stem = f"How many more {more} shapes than {fewer} shapes are there?"
    return _free(stem, d, rationale), items, rationale


# ---------------------------------------------------------------------------- digit tasks


def sum_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    values = [rng.randint(level.digit_low, level.digit_high) for _ in range(2)]
    items = _digits_scene(rng, level, side, values)
    a, b = _reading_order(items)
    total = a + b
    big, small = max(a, b), min(a, b)
    steps = ", ".join(str(big + k) for k in range(1, small + 1)) or str(big)
    paths: dict[str, Path] = {
        "left_to_right": lambda: f"Left to right: {a} and {b}. {a} + {b} = {total}",
        "right_to_left": lambda: f"Right to left: {b} and {a}. {b} + {a} = {total}",
        "count_up": lambda: f"From the larger, {big}, count up {small}: {steps}",
    }
    rationale = choose(rng, paths, total)
    return _free("What is the sum of the two numbers in the image?", total, rationale), items, rationale


def max_v2(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item], Rationale]:
    best = rng.randint(level.digit_low + 2, level.digit_high)
    values = [best, *rng.sample(range(level.digit_low, best), 2)]
    rng.shuffle(values)
    items = _digits_scene(rng, level, side, values)
    a, b, c = _reading_order(items)
    ab = max(a, b)
    ordered = ", ".join(str(v) for v in sorted((a, b, c)))
    paths: dict[str, Path] = {
        "list": lambda: f"The numbers are {a}, {b} and {c}. The largest is {best}",
        "pairwise": lambda: f"{a} or {b}: {ab}. {ab} or {c}: {best}",
        "sort": lambda: f"Sorted: {ordered}. The last is {best}",
    }
    rationale = choose(rng, paths, best)
    return _free("What is the largest number in the image?", best, rationale), items, rationale


BUILDERS: dict[str, Callable[[random.Random, Level, int], tuple[_Question, list[Item], Rationale]]] = {
    "total": total_v2,
    "count": count_v2,
    "compare": compare_v2,
    "diff": diff_v2,
    "sum": sum_v2,
    "max": max_v2,
}
