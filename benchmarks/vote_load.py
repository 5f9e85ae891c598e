r"""A self-reward load shaped like the 7B recipe's rollouts, with the answer each prompt should get.

512 prompts x n = 10 per step: the true answer of a prompt is an integer, a decimal, a fraction
(written ``a/b``, ``\frac{a}{b}`` or ``\dfrac{a}{b}``), a radical (``\frac{\sqrt{2}}{2}`` or
``\frac{1}{\sqrt{2}}``), an angle in degrees, or a choice letter. Each response states the true
answer in one of its spellings with probability ``p_right`` (varying per prompt), else a near miss;
8% are truncated before their box. Deterministic in ``seed``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TRUNCATED_SHARE = 0.08
REASONING = (
    "Let me read the figure. The marked side is 3 and the angle is 40 degrees, so I compute step by step. "
)


@dataclass(frozen=True)
class VoteLoad:
    prompt_ids: list[str]
    response_indexes: list[int]
    responses: list[str]
    truth: dict[str, list[str]]
    """prompt_id -> every spelling of its true answer (the first is the plainest)."""


def _integer(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    value = rng.randint(0, 120)
    return [str(value), f"{value}.0"], [[str(value + d)] for d in (-2, -1, 1, 3)]


def _decimal(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    value = rng.randint(1, 999) / 10
    return [f"{value:.1f}", f"{value:.2f}"], [[f"{value + d:.1f}"] for d in (-0.2, 0.1, 1.0)]


def _fraction_spellings(num: int, den: int) -> list[str]:
    return [f"{num}/{den}", rf"\frac{{{num}}}{{{den}}}", rf"\dfrac{{{num}}}{{{den}}}"]


def _fraction(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    den = rng.choice([3, 7, 9, 11, 13])
    num = rng.randint(1, den - 1)
    wrong = [
        _fraction_spellings(num + 1, den),
        _fraction_spellings(num, den + 1),
        _fraction_spellings(den, num + den),
    ]
    return _fraction_spellings(num, den), wrong


def _radical(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    k = rng.choice([2, 3, 5, 6, 7])
    right = [rf"\frac{{\sqrt{{{k}}}}}{{{k}}}", rf"\frac{{1}}{{\sqrt{{{k}}}}}"]
    wrong = [
        [rf"\sqrt{{{k}}}"],
        [rf"\frac{{\sqrt{{{k}}}}}{{2}}", rf"\frac{{{k}}}{{2\sqrt{{{k}}}}}"],
        [rf"2\sqrt{{{k}}}"],
    ]
    return right, wrong


def _degrees(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    value = rng.choice(range(20, 170, 5))
    spell = lambda v: [f"{v}^\\circ", f"{v}°", str(v)]  # noqa: E731 - three spellings of one angle
    return spell(value), [spell(value + d) for d in (-10, 5, 15)]


def _letter(rng: random.Random) -> tuple[list[str], list[list[str]]]:
    right = rng.choice("ABCD")
    return [right, f"({right})"], [[other, f"({other})"] for other in "ABCD" if other != right]


KINDS = (_integer, _decimal, _fraction, _radical, _degrees, _letter)


def make_vote_load(n_prompts: int = 512, n: int = 10, steps: int = 4, seed: int = 0) -> VoteLoad:
    rng = random.Random(seed)
    prompt_ids: list[str] = []
    indexes: list[int] = []
    responses: list[str] = []
    truth: dict[str, list[str]] = {}
    for step in range(steps):
        for p in range(n_prompts):
            prompt_id = f"s{step}-p{p}"
            right, wrong = KINDS[(step * n_prompts + p) % len(KINDS)](rng)
            truth[prompt_id] = right
            p_right = rng.uniform(0.35, 0.95)
            for i in range(n):
                spellings = right if rng.random() < p_right else rng.choice(wrong)
                final = rng.choice(spellings)
                if rng.random() < TRUNCATED_SHARE:
                    text = REASONING + "Therefore the answer is"
                else:
                    text = REASONING + f"Therefore the answer is $\\boxed{{{final}}}$."
                prompt_ids.append(prompt_id)
                indexes.append(i)
                responses.append(text)
    return VoteLoad(prompt_ids, indexes, responses, truth)


def _hostile_answer(rng: random.Random) -> str:
    """An answer a collapsing policy might emit that is expensive for a computer-algebra system."""
    k = rng.randint(2, 9)
    shapes = [
        rf"{k}^{{{k}^{{{k}^{{{k}}}}}}}",  # power tower
        rf"({k}0^{{{k}}})!",  # factorial of a large number
        rf"\Gamma(10^{{{k}0}})",
        rf"{k}^{{{rng.randint(10_000, 99_999)}}}",  # passes the pre-check: exact, and fast
        rf"x^{{{rng.randint(1000, 9999)}}}+{k}",
        "\\frac{1}{" * 12 + f"{k}" + "}" * 12,  # deep continued fraction
        "+".join(f"x_{{{i}}}^{{{k}}}" for i in range(rng.randint(8, 14))),
        rf"\sqrt{{{k}}}" * 20,
    ]
    return rng.choice(shapes)


def make_hostile_load(n_prompts: int = 512, n: int = 10, seed: int = 0) -> VoteLoad:
    """Every response boxes a different expensive expression: the worst case for symbolic merging."""
    rng = random.Random(seed)
    prompt_ids, indexes, responses = [], [], []
    for p in range(n_prompts):
        for i in range(n):
            prompt_ids.append(f"h{p}")
            indexes.append(i)
            responses.append(REASONING + f"Therefore the answer is $\\boxed{{{_hostile_answer(rng)}}}$.")
    return VoteLoad(prompt_ids, indexes, responses, truth={})
