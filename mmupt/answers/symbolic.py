r"""Symbolic answer equivalence with math-verify: batched, time-budgeted, in a killable child.

Why a child process: math-verify's own timeout relies on ``signal.alarm``, which only works in
the main thread, and nothing in-process interrupts a long C-level computation such as the
big-integer power in ``9^{9^{9^{9}}}``. So:

1. ``symbolically_safe`` refuses, before any parsing, the shapes that make sympy compute without
   end (power towers, huge exponents, factorials or Gamma of large numbers, very long input);
   a refused pair is "not equivalent" and counted as ``refused``.
2. The remaining pairs of a call travel to the child **in one request** with one time budget.
   The child parses each distinct string once and enforces the budget itself with an interval
   timer (it is single-threaded, so the signal interrupts Python-level sympy work); pairs left
   when the budget runs out are "not equivalent" and counted as ``timeouts``.
3. Only a child that does not answer by the budget plus ``KILL_GRACE_S`` (stuck in C code) is
   killed; a fresh one starts on the next call.

Safety: only math-verify's LaTeX parser is used (ANTLR grammar -> sympy objects); its
plain-expression parser goes through sympy's ``parse_expr``, which calls ``eval``.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from mmupt.answers.canonical import MAX_SYMBOLIC_CHARS
from mmupt.answers.extract import balanced_end
from mmupt.worker import ChildProcess, WorkerUnavailable, serve

logger = logging.getLogger(__name__)

SYMBOLIC_TIMEOUT_S = 2.0
"""Default time budget of one call (one pair, or one prompt's batch of pairs)."""

WORKER_START_TIMEOUT_S = 60.0
"""How long the symbolic worker may take to start (importing sympy on a busy machine)."""

KILL_GRACE_S = 0.5
"""The child keeps to its budget itself; it is killed only when it overruns by this much."""

MAX_EXPONENT_DIGITS = 4
"""An exponent written with more digits than this (``2^{12345}``) is refused."""

MAX_POWERS = 8
"""An answer with more ``^`` than this is refused (sympy expands nested powers eagerly)."""

MAX_NESTING = 6
"""An answer nested deeper than this (braces or brackets) is refused: real answers are shallow,
and simplifying a deep continued fraction takes sympy seconds."""

MAX_FACTORIAL_ARGUMENT = 1000
"""``n!``, ``\\Gamma(n)``, ``\\binom{n}{k}`` with a number above this (or with any power) are refused."""

_CACHE_LIMIT = 65_536
_COMBINATORIAL_RE = re.compile(r"!|\\(?:Gamma|gamma|binom|dbinom|tbinom|choose|prod|sum)(?![A-Za-z])")
_INTEGER_RE = re.compile(r"\d+")


# ============================================================================ pre-check
def symbolically_safe(canonical: str) -> bool:
    r"""Whether math-verify may parse ``canonical`` without risking unbounded work.

    >>> symbolically_safe(r"3^{1009}"), symbolically_safe(r"9^{9^{9}}"), symbolically_safe("2^{12345}")
    (True, False, False)
    >>> symbolically_safe("100!"), symbolically_safe("100000!"), symbolically_safe(r"\Gamma(10^{10})")
    (True, False, False)
    """
    if len(canonical) > MAX_SYMBOLIC_CHARS or canonical.count("^") > MAX_POWERS:
        return False
    if _nesting(canonical) > MAX_NESTING:
        return False
    for exponent in _exponents(canonical):
        if "^" in exponent or "\\exp" in exponent or len(_INTEGER_RE.findall(exponent)) > 1:
            return False  # a tower, or an exponent that is itself arithmetic on numbers
        if sum(len(run) for run in _INTEGER_RE.findall(exponent)) > MAX_EXPONENT_DIGITS:
            return False
    if _COMBINATORIAL_RE.search(canonical):
        numbers = [int(run) for run in _INTEGER_RE.findall(canonical) if len(run) <= 6] or [0]
        too_long = any(len(run) > 6 for run in _INTEGER_RE.findall(canonical))
        if too_long or "^" in canonical or max(numbers) > MAX_FACTORIAL_ARGUMENT:
            return False
    return True


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth -= 1
    return deepest


def _exponents(text: str) -> list[str]:
    """The exponent of every ``^``: a braced group, or the single token after it."""
    found = []
    for index, char in enumerate(text):
        if char != "^":
            continue
        rest = text[index + 1 :].lstrip()
        if rest.startswith("{"):
            end = balanced_end(rest, 1)
            found.append(rest[1:end] if end is not None else rest[1:])
        else:
            match = re.match(r"\\[A-Za-z]+|\d+|.", rest)
            found.append(match.group(0) if match else "")
    return found


# ============================================================================ child side
class _OutOfTime(BaseException):
    """A BaseException, so that libraries' ``except Exception`` blocks cannot swallow the deadline."""


def child_main() -> None:  # pragma: no cover - runs in the child process
    """Child entry: cap memory, import math-verify once, answer batches until the parent leaves."""
    try:
        import resource

        limit = 4 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify

    # Import and warm the parser before the handshake: "ready" must mean ready, or the first
    # request after a restart would spend its budget importing sympy and be killed again.
    math_verify.parse("$x+1$", extraction_config=[math_verify.LatexExtractionConfig()], parsing_timeout=None)
    serve(_answer_batch)


_PARSED: dict[str, Any] = {}


def _answer_batch(request: tuple[list[tuple[str, str]], float]) -> list[bool | None]:  # pragma: no cover
    """Verdicts of ``pairs`` within ``budget`` seconds; None for each pair the budget did not reach."""
    import signal

    from math_verify import LatexExtractionConfig, parse, verify

    pairs, budget = request
    config = [LatexExtractionConfig()]

    def parsed(text: str) -> Any:
        if text not in _PARSED:
            if len(_PARSED) > _CACHE_LIMIT:
                _PARSED.clear()
            _PARSED[text] = parse(f"${text}$", extraction_config=config, parsing_timeout=None)
        return _PARSED[text]

    def out_of_time(signum: int, frame: Any) -> None:
        raise _OutOfTime

    verdicts: list[bool | None] = [None] * len(pairs)
    previous = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, max(budget, 1e-3))
    try:
        for index, (first, second) in enumerate(pairs):
            try:
                gold, target = parsed(first), parsed(second)
                verdicts[index] = bool(gold and target and verify(gold, target, timeout_seconds=None))
            except _OutOfTime:
                break
            except BaseException:  # noqa: BLE001 - any failure (RecursionError, MemoryError) is "no"
                verdicts[index] = False
    except _OutOfTime:  # the timer fired between two pairs
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return verdicts


# ============================================================================ parent side
class SymbolicChecker:
    """The parent's handle on one lazily started child; calls are serialised by a lock.

    A plain subprocess (see ``mmupt.worker``) can be started from any thread or from a daemonic
    worker process, which a ``signal.alarm`` timeout in this process could not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._child: ChildProcess | None = None
        self._disabled = False
        self._was_ready = False
        self.counters = {"pairs": 0, "requests": 0, "timeouts": 0, "refused": 0, "kills": 0}

    def verdicts(self, pairs: Sequence[tuple[str, str]], budget_s: float) -> list[bool | None]:
        """math-verify's verdict per pair; None where the budget ran out or no worker is available.

        Waiting for a (re)starting worker counts against ``budget_s``; a killed worker is replaced
        at once, so the replacement starts while the caller goes on.
        """
        if not pairs:
            return []
        with self._lock:
            deadline = time.monotonic() + budget_s
            cold = not self._was_ready
            self.counters["requests"] += 1
            child = self._ready_child(budget_s)
            if cold:  # a process's first start is not charged to the answers' budget
                deadline = time.monotonic() + budget_s
            verdicts: list[bool | None] = [None] * len(pairs)
            left = deadline - time.monotonic()
            if child is not None and left > 0:
                self.counters["pairs"] += len(pairs)
                try:
                    verdicts = child.request((list(pairs), left), left + KILL_GRACE_S)
                except WorkerUnavailable as err:
                    self.counters["kills"] += 1
                    logger.warning("symbolic check abandoned (%s); a fresh worker is starting", err)
                    self._child = None
                    self._spawn()
            unanswered = sum(verdict is None for verdict in verdicts)
            if unanswered:
                self.counters["timeouts"] += unanswered
                logger.warning(
                    "%d symbolic comparison(s) ran out of their %.1fs budget; counted as not equivalent",
                    unanswered,
                    budget_s,
                )
            return verdicts

    def _spawn(self) -> None:
        if self._disabled:
            return
        try:
            self._child = ChildProcess(__name__, "child_main")
        except WorkerUnavailable as err:
            logger.warning("symbolic answer checks disabled: %s", err)
            self._disabled = True

    def _ready_child(self, wait_s: float) -> ChildProcess | None:
        """The worker once it is up (waiting at most ``wait_s``), else None; starts one when needed."""
        if self._child is not None and not self._child.alive():
            self._child.kill()
            self._child = None
        if self._child is None:
            self._spawn()
        child = self._child
        if child is None:
            return None
        try:
            # The first start of a process is waited for in full (a cold start is not the
            # answers' fault); a replacement after a kill only gets what the budget leaves.
            if child.wait_ready(wait_s if self._was_ready else WORKER_START_TIMEOUT_S):
                self._was_ready = True
                return child
        except WorkerUnavailable as err:
            logger.warning("symbolic worker failed to start: %s", err)
            self._child = None
            return None
        if time.monotonic() - child.started > WORKER_START_TIMEOUT_S:
            logger.warning("symbolic answer checks disabled: the math-verify worker did not start")
            child.kill()
            self._child, self._disabled = None, True
        return None

    @property
    def pid(self) -> int | None:
        return self._child.process.pid if self._child is not None else None

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop (without killing) the parent's worker and lock state."""
        if self._child is not None:
            self._child.close_pipes()
        self._lock = threading.Lock()
        self._child = None


CHECKER = SymbolicChecker()
atexit.register(CHECKER.close)
if hasattr(os, "register_at_fork"):
    # A forked child (e.g. a data-loader worker) must not talk over the parent's pipes.
    os.register_at_fork(after_in_child=CHECKER.forget_after_fork)
