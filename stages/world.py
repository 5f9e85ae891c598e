"""The embedded visual-math world: seeded scenes of shapes and digits with exact answers.

Why it exists: the MM-UPT loop (SFT warm-up -> majority-vote GRPO -> evaluation) needs data that a
~1-5M-parameter Qwen2.5-VL-architecture model can learn from scratch on a CPU in minutes, yet not
solve perfectly, so that self-improvement has room to show. Scenes are therefore flat, high-contrast
and regular (white background, four saturated colours, three shapes, seven-segment digits), and a
``difficulty`` knob (1..3) adds objects, distractors and smaller sizes and loosens the layout: at
level 1 every object sits centred in its own 28-px cell (one visual token of Qwen2.5-VL), at 2 it
is offset inside its cell, at 3 it is anywhere (see ``Level``).

Every example is a pure function of ``(config, split, index)``: its RNG is seeded from a hash of
``(seed, split, index, attempt)``, so an example never changes when other splits grow or shrink.
Digits are drawn as seven-segment glyphs from rectangles instead of a font: font rasterisation
differs between FreeType builds, and byte-identical images are part of the determinism contract.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
from PIL import Image, ImageDraw

from mmupt.store import Manifest, write_artifact
from schemas.artifacts import WORLD
from schemas.world import TaskName, WorldConfig

logger = logging.getLogger(__name__)

Split = Literal["sft", "heldout", "unlabeled", "dev"]
SPLITS: tuple[Split, ...] = ("sft", "heldout", "unlabeled", "dev")
GENERATION_ORDER: tuple[Split, ...] = ("heldout", "unlabeled", "sft", "dev")
"""Ids are claimed in this order, so the evaluation split never depends on any other split's size.
``dev`` (diagnostics and gate rows) comes last: adding it leaves every other row byte-identical."""

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "blue": (30, 60, 220),
    "green": (20, 150, 40),
    "yellow": (235, 190, 0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
INK: tuple[int, int, int] = (0, 0, 0)  # digits are black so that "the numbers" are unambiguous
BACKGROUND: tuple[int, int, int] = (255, 255, 255)
LETTERS = "ABCD"
MAX_ATTEMPTS = 64  # redraws of one example whose id is already taken (never needed in practice)

# Seven-segment encoding: which of segments a..g are lit for each digit.
SEGMENTS: dict[int, str] = {
    0: "abcdef",
    1: "bc",
    2: "abdeg",
    3: "abcdg",
    4: "bcfg",
    5: "acdfg",
    6: "acdefg",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


CELL = 28
"""One merged visual token of Qwen2.5-VL (2x2 patches of 14 px): the grid the easy levels snap to."""

Layout = Literal["grid", "jitter", "free"]


@dataclass(frozen=True)
class Level:
    """Everything ``difficulty`` changes, in one place so the knob is easy to tune.

    ``layout`` is the main learnability lever. ``grid``: each shape sits centred in its own
    28-px cell (each digit in a 1x2 block), so one object is one visual token and counting is
    counting tokens. ``jitter``: same cells, random offset, so objects straddle patch borders.
    ``free``: anywhere, by rejection sampling. Sizes are in pixels, not image fractions, so a
    larger ``image_size`` only adds room.
    """

    layout: Layout
    max_count: int  # count/total: objects asked about are 1..max_count
    count_distractors: tuple[int, int]  # count: other-colour/shape objects, inclusive range
    compare_max: int  # compare: each compared colour has 1..compare_max objects
    compare_max_gap: int  # compare: |difference| <= this (closer is harder)
    compare_distractors: tuple[int, int]  # compare: objects of a third/fourth colour
    shape_px: tuple[int, int]  # object side in pixels (inclusive range)
    digit_low: int  # digits are digit_low..digit_high
    digit_high: int
    digit_px: tuple[int, int]  # glyph height in pixels (two-digit scenes; three digits are 0.8x)
    digit_distractors: tuple[int, int]  # coloured shapes scattered among the digits


LEVELS: dict[int, Level] = {
    1: Level("grid", 4, (0, 2), 4, 3, (0, 0), (18, 18), 1, 5, (42, 44), (0, 0)),
    2: Level("jitter", 6, (1, 4), 5, 2, (0, 2), (15, 18), 0, 9, (36, 42), (0, 2)),
    3: Level("free", 9, (2, 4), 7, 1, (1, 3), (11, 15), 0, 9, (30, 38), (1, 3)),
}


@dataclass(frozen=True)
class Item:
    """One drawn object: the ground truth an answer is computed from (and tests check pixels against)."""

    kind: str  # circle | square | triangle | digit
    color: str  # key of COLORS, or "black" for digits
    box: tuple[int, int, int, int]  # left, top, width, height in pixels
    value: int | None = None  # the digit, for kind == "digit"


@dataclass(frozen=True)
class WorldExample:
    """One generated row plus the scene it was rendered from."""

    id: str
    image: bytes
    problem: str
    answer: str
    solution: str
    task: TaskName
    choices: tuple[str, ...] | None
    difficulty: int
    split: Split
    items: tuple[Item, ...]
    sibling_problem: str
    sibling_answer: str
    path: str | None = None  # v2: the solution path the SFT rationale took (stages/world_paths.py)


@dataclass(frozen=True)
class _Question:
    problem: str
    answer: str
    solution: str
    choices: tuple[str, ...] | None


# ---------------------------------------------------------------------------- randomness


def example_rng(seed: int, split: str, index: int, attempt: int = 0) -> random.Random:
    """A private RNG per example: stable whatever the split sizes, the order or the process."""
    digest = hashlib.sha256(f"mmupt-world|{seed}|{split}|{index}|{attempt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def example_id(image: bytes, problem: str) -> str:
    """Content id: first 16 hex digits of sha256 over the image bytes and the problem text."""
    return hashlib.sha256(image + problem.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------- layout


def _separated(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw + gap <= bx or bx + bw + gap <= ax or ay + ah + gap <= by or by + bh + gap <= ay


def place(
    rng: random.Random, sizes: list[tuple[int, int]], side: int, gap: int
) -> list[tuple[int, int, int, int]]:
    """Non-overlapping boxes for ``sizes`` (w, h) anywhere, by rejection sampling; restarts when jammed.

    A gap of at least ``gap`` pixels keeps objects of one colour from touching, so every object is
    its own connected blob (what makes counting well-posed, and what tests verify from pixels).
    """
    margin = max(1, gap)
    for _restart in range(200):
        boxes: list[tuple[int, int, int, int]] = []
        for w, h in sizes:
            for _try in range(400):
                box = (rng.randint(margin, side - margin - w), rng.randint(margin, side - margin - h), w, h)
                if all(_separated(box, other, gap) for other in boxes):
                    boxes.append(box)
                    break
            else:
                break  # jammed: start the whole layout again
        if len(boxes) == len(sizes):
            return boxes
    raise RuntimeError(
        f"cannot place {len(sizes)} objects in a {side}px image; lower difficulty or grow image_size"
    )


def place_on_grid(
    rng: random.Random, sizes: list[tuple[int, int]], side: int, jitter: bool
) -> list[tuple[int, int, int, int]]:
    """Boxes for ``sizes`` (w, h), each alone in a block of 28-px cells (1x1, or 1x2 when taller).

    Centred (``jitter`` False) or at a random offset that keeps 1 px from the block's border, so
    objects in neighbouring cells are still at least 2 px apart. Tall blocks (digits) never sit
    side by side: "5" next to "5" would read as the number 55.
    """
    cells = side // CELL
    blocks = [(-(-(w + 2) // CELL), -(-(h + 2) // CELL)) for w, h in sizes]  # cells needed, 1-px border
    order = sorted(range(len(sizes)), key=lambda i: -blocks[i][0] * blocks[i][1])  # big blocks first
    for _restart in range(50):
        free = [[True] * cells for _ in range(cells)]
        tall: set[tuple[int, int]] = set()  # cells (x, y) taken by tall blocks
        boxes: dict[int, tuple[int, int, int, int]] = {}
        for i in order:
            bw, bh = blocks[i]
            anchors = [
                (cx, cy)
                for cy in range(cells - bh + 1)
                for cx in range(cells - bw + 1)
                if all(free[cy + dy][cx + dx] for dy in range(bh) for dx in range(bw))
                and not (
                    bh > 1
                    and any((cx - 1, cy + dy) in tall or (cx + bw, cy + dy) in tall for dy in range(bh))
                )
            ]
            if not anchors:
                break
            cx, cy = rng.choice(anchors)
            for dy in range(bh):
                for dx in range(bw):
                    free[cy + dy][cx + dx] = False
                    if bh > 1:
                        tall.add((cx + dx, cy + dy))
            w, h = sizes[i]
            room_x, room_y = bw * CELL - w, bh * CELL - h
            ox = rng.randint(1, room_x - 1) if jitter else room_x // 2
            oy = rng.randint(1, room_y - 1) if jitter else room_y // 2
            boxes[i] = (cx * CELL + ox, cy * CELL + oy, w, h)
        if len(boxes) == len(sizes):
            return [boxes[i] for i in range(len(sizes))]
    raise RuntimeError(
        f"cannot fit {len(sizes)} objects on the {cells}x{cells} grid; lower difficulty or grow image_size"
    )


def _scene(
    rng: random.Random, specs: list[tuple[str, str]], level: Level, side: int, extra: list[Item] | None = None
) -> list[Item]:
    """Place shapes (``specs`` of (colour, shape)) and already-sized digits (``extra``), in random order.

    In the free layout digits get extra clearance (a quarter of their height between two glyphs)
    so that two digits never read as one two-digit number; on the grid their cells do that.
    """
    pending: list[tuple[str, str, int, int, int | None]] = []
    for color, shape in specs:
        s = rng.randint(*level.shape_px)
        pending.append((shape, color, s, s, None))
    for item in extra or []:
        pending.append((item.kind, item.color, item.box[2], item.box[3], item.value))
    rng.shuffle(pending)  # the drawing/placement order carries no information
    if level.layout == "free":
        pads = [h // 8 if kind == "digit" else 0 for kind, _, _, h, _ in pending]
        sizes = [(w + 2 * pad, h + 2 * pad) for (_, _, w, h, _), pad in zip(pending, pads, strict=True)]
        boxes = [
            (x + pad, y + pad, w - 2 * pad, h - 2 * pad)
            for (x, y, w, h), pad in zip(place(rng, sizes, side, gap=max(2, side // 40)), pads, strict=True)
        ]
    else:
        boxes = place_on_grid(
            rng, [(w, h) for _, _, w, h, _ in pending], side, jitter=level.layout == "jitter"
        )
    return [
        Item(kind, color, box, value) for (kind, color, _, _, value), box in zip(pending, boxes, strict=True)
    ]


# ---------------------------------------------------------------------------- drawing


def _segment_rects(box: tuple[int, int, int, int]) -> dict[str, tuple[int, int, int, int]]:
    """Inclusive pixel rectangles of segments a..g for a glyph filling ``box``."""
    x, y, w, h = box
    t = max(2, h // 7)
    x1, y1 = x + w - 1, y + h - 1
    ym = y + h // 2
    return {
        "a": (x, y, x1, y + t - 1),
        "b": (x1 - t + 1, y, x1, ym),
        "c": (x1 - t + 1, ym, x1, y1),
        "d": (x, y1 - t + 1, x1, y1),
        "e": (x, ym, x + t - 1, y1),
        "f": (x, y, x + t - 1, ym),
        "g": (x, ym - t // 2, x1, ym - t // 2 + t - 1),
    }


def draw_items(items: tuple[Item, ...] | list[Item], side: int) -> bytes:
    """Render items onto a white square and encode as PNG (no anti-aliasing: colours stay exact)."""
    image = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for item in items:
        x, y, w, h = item.box
        x1, y1 = x + w - 1, y + h - 1
        if item.kind == "digit":
            assert item.value is not None
            rects = _segment_rects(item.box)
            for segment in SEGMENTS[item.value]:
                draw.rectangle(rects[segment], fill=INK)
            continue
        fill = COLORS[item.color]
        if item.kind == "circle":
            draw.ellipse((x, y, x1, y1), fill=fill)
        elif item.kind == "square":
            draw.rectangle((x, y, x1, y1), fill=fill)
        elif item.kind == "triangle":
            draw.polygon([(x, y1), (x1, y1), ((x + x1) / 2, y)], fill=fill)
        else:
            raise ValueError(f"unknown item kind {item.kind!r}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- questions


def _choices_line(options: list[str]) -> str:
    return "\nChoices: " + " ".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(options))


def _numeric_options(rng: random.Random, answer: int, low: int, high: int) -> list[str]:
    """Four distinct integers in [low, high] holding ``answer`` once, at a random rank.

    A window of four consecutive values with the answer at a random offset: picking "the middle
    option" or "the largest option" is then no better than chance.
    """
    start = answer - rng.randint(0, 3)
    start = max(low, min(start, high - 3))
    options = [str(v) for v in range(start, start + 4)]
    rng.shuffle(options)
    return options


def _ask(
    mc: bool,
    stem: str,
    rationale: str,
    answer: int,
    options: list[str] | None = None,
) -> _Question:
    """Free-form or multiple-choice form of a numeric question, with its templated solution."""
    if not mc:
        return _Question(f"<image>{stem}", str(answer), f"{rationale}. \\boxed{{{answer}}}", None)
    assert options is not None and options.count(str(answer)) == 1
    letter = LETTERS[options.index(str(answer))]
    return _Question(
        f"<image>{stem}{_choices_line(options)}",
        letter,
        f"{rationale}, which is option ({letter}). \\boxed{{{letter}}}",
        tuple(options),
    )


def _count(rng: random.Random, level: Level, side: int, mc: bool) -> tuple[_Question, list[Item]]:
    color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
    n = rng.randint(1, level.max_count)
    others = [(c, s) for c in COLORS for s in SHAPES if (c, s) != (color, shape)]
    specs = [(color, shape)] * n + [rng.choice(others) for _ in range(rng.randint(*level.count_distractors))]
    items = _scene(rng, specs, level, side)
    options = _numeric_options(rng, n, 0, level.max_count + 3) if mc else None
    stem = f"How many {color} {shape}s are in the image?"
    return _ask(mc, stem, f"I count the {color} {shape}s: {n}", n, options), items


def _total(rng: random.Random, level: Level, side: int, mc: bool) -> tuple[_Question, list[Item]]:
    n = rng.randint(1, level.max_count)
    specs = [(rng.choice(list(COLORS)), rng.choice(SHAPES)) for _ in range(n)]
    items = _scene(rng, specs, level, side)
    options = _numeric_options(rng, n, 0, level.max_count + 3) if mc else None
    return _ask(mc, "How many shapes are in the image?", f"I count all the shapes: {n}", n, options), items


def _compare(rng: random.Random, level: Level, side: int) -> tuple[_Question, list[Item]]:
    first, second = rng.sample(list(COLORS), 2)
    while True:
        n1, n2 = rng.randint(1, level.compare_max), rng.randint(1, level.compare_max)
        if n1 != n2 and abs(n1 - n2) <= level.compare_max_gap:
            break
    third = [c for c in COLORS if c not in (first, second)]
    specs = [(first, rng.choice(SHAPES)) for _ in range(n1)] + [
        (second, rng.choice(SHAPES)) for _ in range(n2)
    ]
    specs += [(rng.choice(third), rng.choice(SHAPES)) for _ in range(rng.randint(*level.compare_distractors))]
    items = _scene(rng, specs, level, side)
    winner, letter = (first, "A") if n1 > n2 else (second, "B")
    problem = f"<image>Are there more {first} shapes or {second} shapes?{_choices_line([first, second])}"
    solution = (
        f"{first.capitalize()}: {n1}, {second}: {n2}. "
        f"{winner.capitalize()} has more, so the answer is ({letter}). \\boxed{{{letter}}}"
    )
    return _Question(problem, letter, solution, (first, second)), items


def _digits_scene(rng: random.Random, level: Level, side: int, values: list[int]) -> list[Item]:
    scale = 1.0 if len(values) <= 2 else 0.8  # three full-size glyphs crowd a small image
    glyphs = []
    for value in values:
        h = rng.randint(*(round(px * scale) for px in level.digit_px))
        glyphs.append(Item("digit", "black", (0, 0, max(4, h // 2), h), value))
    distractors = [
        (rng.choice(list(COLORS)), rng.choice(SHAPES)) for _ in range(rng.randint(*level.digit_distractors))
    ]
    return _scene(rng, distractors, level, side, extra=glyphs)


def _reading_order(items: list[Item]) -> list[int]:
    """Digits left to right (top to bottom on ties): the order the rationale names them in."""
    digits = sorted((i for i in items if i.kind == "digit"), key=lambda i: (i.box[0], i.box[1]))
    return [d.value for d in digits if d.value is not None]


def _sum(rng: random.Random, level: Level, side: int, mc: bool) -> tuple[_Question, list[Item]]:
    values = [rng.randint(level.digit_low, level.digit_high) for _ in range(2)]
    items = _digits_scene(rng, level, side, values)
    a, b = _reading_order(items)
    total = a + b
    options = _numeric_options(rng, total, 0, 2 * level.digit_high) if mc else None
    rationale = f"The numbers are {a} and {b}. {a} + {b} = {total}"
    return _ask(mc, "What is the sum of the two numbers in the image?", rationale, total, options), items


def _max(rng: random.Random, level: Level, side: int, mc: bool) -> tuple[_Question, list[Item]]:
    # Draw the maximum first so the answer is uniform over its range; three uniform digits would
    # make "always answer 9" right 30% of the time.
    best = rng.randint(level.digit_low + 2, level.digit_high)
    values = [best, *rng.sample(range(level.digit_low, best), 2)]
    rng.shuffle(values)
    items = _digits_scene(rng, level, side, values)
    a, b, c = _reading_order(items)
    options = None
    if mc:  # the shown digits plus one unseen: the choice forces a real comparison
        unseen = [v for v in range(level.digit_low, level.digit_high + 1) if v not in values]
        options = [str(v) for v in values] + [str(rng.choice(unseen))]
        rng.shuffle(options)
    rationale = f"The numbers are {a}, {b} and {c}. The largest is {best}"
    return _ask(mc, "What is the largest number in the image?", rationale, best, options), items


def sibling_question(
    items: tuple[Item, ...] | list[Item], problem: str, rng: random.Random
) -> tuple[str, str]:
    """A different free-form question about the same scene, answered from its items.

    First SFT teaches question writing (the synthesis task) with these, so every sibling is a
    question the world itself would ask, with an exact answer.
    """
    digits = [i.value for i in items if i.kind == "digit" and i.value is not None]
    shapes = [(i.color, i.kind) for i in items if i.kind != "digit"]
    candidates: list[tuple[str, int]] = []
    if len(digits) == 2:
        candidates.append(("What is the sum of the two numbers in the image?", sum(digits)))
    if digits:
        candidates.append(("What is the largest number in the image?", max(digits)))
        candidates.append(("What is the smallest number in the image?", min(digits)))
    if shapes:
        candidates.append(("How many shapes are in the image?", len(shapes)))
        for color, kind in sorted(set(shapes)):
            candidates.append((f"How many {color} {kind}s are in the image?", shapes.count((color, kind))))
    stem = problem.replace("<image>", "").split("\nChoices:")[0]
    fresh = [(q, a) for q, a in candidates if q != stem]
    question, answer = rng.choice(fresh or candidates)
    return f"<image>{question}", str(answer)


# ---------------------------------------------------------------------------- public API


def render_example(config: WorldConfig, split: Split, index: int, attempt: int = 0) -> WorldExample:
    """Row ``index`` of ``split``: a pure function of the config, the split, the index and ``attempt``.

    The task is assigned round-robin (exactly balanced tasks per split); ``attempt`` > 0 gives a
    fresh draw of the same task, used only when the first draw's id is already taken.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    rng = example_rng(config.seed, split, index, attempt)
    tasks = config.tasks or []
    task = tasks[index % len(tasks)]
    level = LEVELS[config.difficulty]
    side = config.image_size
    if config.version == 2:
        # Imported here: world_paths builds on this module's scene helpers.
        from stages.world_paths import BUILDERS

        question, items, rationale = BUILDERS[task](rng, level, side)
        return _finish(config, split, task, question, items, rng, rationale.path)
    mc = rng.random() < (config.multiple_choice_share or 0.0)
    if task == "count":
        question, items = _count(rng, level, side, mc)
    elif task == "total":
        question, items = _total(rng, level, side, mc)
    elif task == "compare":
        question, items = _compare(rng, level, side)
    elif task == "sum":
        question, items = _sum(rng, level, side, mc)
    elif task == "max":
        question, items = _max(rng, level, side, mc)
    else:  # pragma: no cover - guarded by WorldConfig's task check
        raise ValueError(f"unknown task {task!r} for world version 1")
    return _finish(config, split, task, question, items, rng, None)


def _finish(
    config: WorldConfig,
    split: Split,
    task: TaskName,
    question: _Question,
    items: list[Item],
    rng: random.Random,
    path: str | None,
) -> WorldExample:
    image = draw_items(items, config.image_size)
    sibling_problem, sibling_answer = sibling_question(items, question.problem, rng)
    return WorldExample(
        id=example_id(image, question.problem),
        image=image,
        problem=question.problem,
        answer=question.answer,
        solution=question.solution,
        task=task,
        choices=question.choices,
        difficulty=config.difficulty,
        split=split,
        items=tuple(items),
        sibling_problem=sibling_problem,
        sibling_answer=sibling_answer,
        path=path,
    )


def split_size(config: WorldConfig, split: Split) -> int:
    return {
        "sft": config.n_sft,
        "heldout": config.n_heldout,
        "unlabeled": config.n_unlabeled,
        "dev": config.n_dev,
    }[split]


def iter_world(config: WorldConfig) -> Iterator[WorldExample]:
    """All rows, in ``GENERATION_ORDER``, with ids unique across and within splits.

    An example whose id is already taken is redrawn with the next ``attempt``; since heldout is
    generated first, evaluation rows depend only on the seed and their own index.
    """
    seen: set[str] = set()
    for split in GENERATION_ORDER:
        for index in range(split_size(config, split)):
            for attempt in range(MAX_ATTEMPTS):
                example = render_example(config, split, index, attempt)
                if example.id not in seen:
                    break
                logger.debug(
                    "world: %s[%d] attempt %d collides with %s; redrawing", split, index, attempt, example.id
                )
            else:
                raise RuntimeError(
                    f"world: {split}[{index}]: no unique example after {MAX_ATTEMPTS} attempts"
                )
            seen.add(example.id)
            yield example


def world_table(examples: list[WorldExample]) -> pa.Table:
    """The ``world`` table (schema ``schemas.artifacts.WORLD``) for ``examples``, in the given order."""
    return pa.Table.from_pydict(
        {
            "id": [e.id for e in examples],
            "images": [[e.image] for e in examples],
            "problem": [e.problem for e in examples],
            "answer": [e.answer for e in examples],
            "solution": [e.solution for e in examples],
            "task": [e.task for e in examples],
            "choices": [list(e.choices) if e.choices is not None else None for e in examples],
            "difficulty": [e.difficulty for e in examples],
            "split": [e.split for e in examples],
            "sibling_problem": [e.sibling_problem for e in examples],
            "sibling_answer": [e.sibling_answer for e in examples],
        },
        schema=WORLD,
    )


def world_stats(examples: list[WorldExample]) -> dict[str, object]:
    """Row counts per split and per (split, task), plus the multiple-choice share and scene sizes."""
    rows = Counter(e.split for e in examples)
    per_task: dict[str, dict[str, int]] = {}
    for e in examples:
        per_task.setdefault(e.split, {}).setdefault(e.task, 0)
        per_task[e.split][e.task] += 1
    n = max(1, len(examples))
    return {
        "rows": {split: rows.get(split, 0) for split in SPLITS},
        "tasks": {split: dict(sorted(per_task.get(split, {}).items())) for split in SPLITS},
        "multiple_choice_share": round(sum(e.choices is not None for e in examples) / n, 4),
        "mean_objects": round(sum(len(e.items) for e in examples) / n, 3),
        "majority_baseline": majority_baseline([e for e in examples if e.split == "heldout"] or examples),
    }


def majority_baseline(examples: list[WorldExample]) -> dict[str, float]:
    """Per task, the accuracy of always giving that task's most common answer.

    The floor a trained model must beat: held-out accuracy is only meaningful next to it.
    """
    by_task: dict[str, Counter[str]] = {}
    for e in examples:
        by_task.setdefault(e.task, Counter())[e.answer] += 1
    return {
        task: round(answers.most_common(1)[0][1] / sum(answers.values()), 4)
        for task, answers in sorted(by_task.items())
    }


def generate_world(config: WorldConfig, out_dir: Path) -> Manifest:
    """Generate every split and publish them as one artifact (kind ``world``, table ``world``)."""
    started = time.perf_counter()
    examples = list(iter_world(config))
    order = {split: i for i, split in enumerate(SPLITS)}
    examples.sort(key=lambda e: order[e.split])  # stable: keeps index order inside each split
    stats = world_stats(examples)
    elapsed = time.perf_counter() - started
    stats["seconds"] = round(elapsed, 3)
    manifest = write_artifact(out_dir, "world", {"world": world_table(examples)}, config=config, stats=stats)
    logger.info("world: %d rows in %.2fs -> %s", len(examples), elapsed, out_dir)
    return manifest
