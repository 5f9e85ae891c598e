r"""Whether two answers state the same thing: exact and numeric rules first, math-verify last.

Decided in this order, each step only for what the previous ones left open:

1. equal voting keys (``equivalence_key``): equal;
2. both plain numbers: compared exactly as rationals (``0.333`` is not ``1/3``);
3. either side not maths (a choice letter, prose): not equal;
4. both closed numeric expressions (numbers, ``+ - * / ^``, ``\frac``, ``\sqrt``, ``\pi``): their
   values decide when they agree to ``VALUE_EQUAL_REL`` or differ by more than
   ``VALUE_DISTINCT_REL`` (math-verify itself rounds to 6 decimals, so only the band between
   goes on);
5. a symbolic check with math-verify in a child process (``mmupt.answers.symbolic``), batched
   per call and bounded in time, for what is left: mostly expressions with variables.

Why step 4 is ours and not math-verify's: it decides radicals and fractions in microseconds in
this process, where a round trip through sympy costs milliseconds; on the 7B recipe's rollout
load it removes every symbolic comparison (``benchmarks/vote_bench.py``), and a test pins that it
gives the same classes as math-verify on a mixed set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from mmupt.answers.canonical import canonical_answer, equivalence_key, looks_symbolic, parse_number
from mmupt.answers.symbolic import CHECKER, SYMBOLIC_TIMEOUT_S, symbolically_safe
from mmupt.latexnum import latex_value

VALUE_EQUAL_REL = 1e-12
VALUE_DISTINCT_REL = 1e-5

Pair = tuple[str, str]

_VERDICTS: dict[Pair, bool] = {}
"""math-verify verdicts already paid for (an exhausted budget is remembered as "not equal", so
the same hostile pair never costs twice)."""
_UNDECIDED: set[Pair] = set()
"""Pairs in ``_VERDICTS`` that math-verify never decided (refused as unsafe, or out of time)."""
_VERDICT_CACHE_LIMIT = 65_536


def fast_verdict(a: str, b: str) -> bool | None:
    r"""Steps 1-4: True or False when decided without math-verify, else None.

    >>> fast_verdict("0.5", r"\frac{1}{2}"), fast_verdict("B", "C"), fast_verdict(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")
    (True, False, True)
    >>> fast_verdict("x+1", "1+x") is None
    True
    """
    key_a, key_b = equivalence_key(a), equivalence_key(b)
    if key_a == key_b:
        return True
    if parse_number(key_a) is not None and parse_number(key_b) is not None:
        return False
    if not (looks_symbolic(key_a) and looks_symbolic(key_b)):
        return False
    return _value_verdict(key_a, key_b)


@lru_cache(maxsize=65_536)
def closed_value(key: str) -> float | None:
    """The numeric value of a voting key that is a closed numeric expression (no functions), else None."""
    number = parse_number(key)
    if number is not None:
        try:
            return float(number)
        except OverflowError:
            return None
    return latex_value(key, functions=False)


def _value_verdict(key_a: str, key_b: str) -> bool | None:
    value_a, value_b = closed_value(key_a), closed_value(key_b)
    if value_a is None or value_b is None:
        return None
    scale = max(1.0, abs(value_a), abs(value_b))
    gap = abs(value_a - value_b)
    if gap <= VALUE_EQUAL_REL * scale:
        return True
    if gap > VALUE_DISTINCT_REL * scale:
        return False
    return None


def symbolic_pair(a: str, b: str) -> Pair:
    """The (sorted, canonical) form in which a pair goes to math-verify and into the cache."""
    first, second = sorted((canonical_answer(a), canonical_answer(b)))
    return first, second


def needs_symbolic_check(a: str, b: str) -> bool:
    """Whether ``answers_equivalent(a, b)`` would consult math-verify (lets callers budget it).

    >>> needs_symbolic_check("1/2", "0.5"), needs_symbolic_check("2", "3"), needs_symbolic_check("x+1", "1+x")
    (False, False, True)
    """
    return fast_verdict(a, b) is None and all(symbolically_safe(side) for side in symbolic_pair(a, b))


def symbolic_verdicts(pairs: Iterable[Pair], budget_s: float = SYMBOLIC_TIMEOUT_S) -> dict[Pair, bool]:
    """math-verify's verdict for each ``symbolic_pair``, all unknown ones in one request.

    Unsafe pairs (``symbolically_safe``) are refused without parsing; pairs the budget did not
    reach are not equivalent. Both are remembered, so a pair costs at most once per process.
    """
    wanted = list(dict.fromkeys(pairs))
    todo = [pair for pair in wanted if pair not in _VERDICTS]
    safe = [pair for pair in todo if symbolically_safe(pair[0]) and symbolically_safe(pair[1])]
    CHECKER.counters["refused"] += len(todo) - len(safe)
    verdicts = dict.fromkeys(todo, False)
    undecided = set(todo) - set(safe)
    for pair, verdict in zip(safe, CHECKER.verdicts(safe, budget_s), strict=True):
        verdicts[pair] = bool(verdict)
        if verdict is None:
            undecided.add(pair)
    if len(_VERDICTS) + len(verdicts) > _VERDICT_CACHE_LIMIT:
        _VERDICTS.clear()
        _UNDECIDED.clear()
    _VERDICTS.update(verdicts)
    _UNDECIDED.update(undecided)
    return {pair: _VERDICTS.get(pair, verdicts.get(pair, False)) for pair in wanted}


@dataclass
class SymbolicBudget:
    """Seconds of math-verify work left to one batch (a vote over a table, a training step).

    Each prompt's request gets ``min(its own budget, what is left)`` and is charged its wall time
    (a worker restart included), so a batch of hostile answers costs at most this, not
    prompts x per-prompt budget.
    """

    seconds: float

    def grant(self, wanted: float) -> float:
        return max(0.0, min(wanted, self.seconds))

    def charge(self, spent: float) -> None:
        self.seconds -= spent


def decide_pairs(
    pairs: Iterable[Pair], budget_s: float, batch: SymbolicBudget | None = None
) -> tuple[dict[Pair, bool], bool]:
    """``symbolic_verdicts`` within ``budget_s`` (and what ``batch`` has left).

    Returns the verdicts and whether all of them were really decided (False when a pair was
    refused as unsafe, ran out of time, or the batch had no time left: those count as not equal).
    """
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return {}, True
    granted = batch.grant(budget_s) if batch is not None else budget_s
    if granted <= 0.0:
        return {}, False
    start = time.monotonic()
    verdicts = symbolic_verdicts(wanted, granted)
    if batch is not None:
        batch.charge(time.monotonic() - start)
    return verdicts, not any(pair in _UNDECIDED for pair in wanted)


def answers_equivalent(a: str, b: str, *, symbolic: bool = True, timeout: float = SYMBOLIC_TIMEOUT_S) -> bool:
    r"""Whether two extracted answers state the same thing (symmetric).

    ``symbolic=False`` keeps to steps 1-3 (exact rules only); otherwise numeric values and then
    math-verify (within ``timeout`` seconds, "not equivalent" when it runs out) decide the rest.

    >>> answers_equivalent("0.5", r"\frac{1}{2}"), answers_equivalent("(B)", "B."), answers_equivalent("2", "3")
    (True, True, False)
    """
    if not symbolic:
        return equivalence_key(a) == equivalence_key(b)
    verdict = fast_verdict(a, b)
    if verdict is not None:
        return verdict
    pair = symbolic_pair(a, b)
    return symbolic_verdicts([pair], timeout)[pair]


def clear_caches() -> None:
    """Forget cached verdicts and canonical forms (benchmarks time cold work with this)."""
    _VERDICTS.clear()
    _UNDECIDED.clear()
    closed_value.cache_clear()
    canonical_answer.cache_clear()


def symbolic_counters() -> dict[str, int]:
    """Symbolic work done in this process: pairs sent, requests, timeouts, refusals, kills."""
    return dict(CHECKER.counters)


def symbolic_timeouts() -> int:
    """How many symbolic comparisons ran out of time in this process (for stage statistics)."""
    return CHECKER.counters["timeouts"]
