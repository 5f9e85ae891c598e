r"""Final-answer extraction and answer equivalence, shared by voting and evaluation.

Voting runs this on every rollout, so the common path is cheap string work:

1. ``extract_answer`` pulls the final answer out of a response (last balanced ``\boxed{}``, then
   documented fallbacks). Linear time, bounded input, no backtracking-prone regexes.
2. ``canonical_answer`` rewrites it into one canonical string (cached): LaTeX noise removed,
   numbers normalised (``"2.50"`` -> ``"2.5"``, ``\frac{1}{2}`` -> ``"0.5"``), choice letters
   reduced to the letter.
3. ``equivalence_key`` is what voting groups by: the canonical form with numbers as exact
   rationals. Answers with one key are one vote without further work.
4. ``answers_equivalent`` decides the few remaining pairs of distinct keys: exact comparison of
   numbers first, then (only when both sides look like maths) a symbolic check with math-verify.

Safety: model text is never evaluated. The symbolic check uses only math-verify's LaTeX parser
(ANTLR grammar -> sympy objects); its plain-expression parser is not used because it goes through
sympy's ``parse_expr``, which calls ``eval``. The check runs in a separate worker process that is
killed when it exceeds its time limit: math-verify's own timeout relies on ``signal.alarm``,
which only works in the main thread and cannot interrupt a long C-level computation such as the
big-integer power in ``9^{9^{9^{9}}}``. A killed worker is restarted lazily.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_RESPONSE_CHARS = 32_768
"""Only the tail of a longer response is searched: the final answer is at the end, and this
bounds the work a runaway generation can cause."""

MAX_CANONICAL_CHARS = 1_000
"""Longer "answers" are only whitespace-normalised: real final answers are short, and this
keeps canonicalisation of garbage cheap."""

MAX_SYMBOLIC_CHARS = 200
"""Answers longer than this never go to the symbolic check."""

MAX_NUMBER_CHARS = 64
"""Longer digit strings are not treated as numbers (bounds big-integer work)."""

SYMBOLIC_TIMEOUT_S = 2.0
"""Default wall-clock limit of one symbolic comparison."""

WORKER_START_TIMEOUT_S = 60.0
"""How long the symbolic worker may take to start (importing sympy on a busy machine)."""

CHOICE_LETTERS = "ABCDEFGHIJ"

# ============================================================================ extraction
_BOX_START_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*\{")
# Tokens that matter for brace balance. "\\" (a LaTeX line break) is consumed first so that
# "\\{" is a line break followed by an opening brace, and "\{" / "\}" are literal braces.
_BRACE_TOKEN_RE = re.compile(r"\\\\|\\[{}]|[{}]")
_TOKEN_WITH_BOX_RE = re.compile(r"\\\\|\\(?:boxed|fbox)(?![A-Za-z])\s*\{|\\[{}]|[{}]")
_PHRASE_RE = re.compile(
    # Adjacent optional whitespace runs would backtrack quadratically: each \s* is separated
    # from the next by a mandatory token.
    r"\b(?:final\s+)?answer\s*(?:\*\*\s*)?(?:is\b|:|=)\s*(?:\*\*\s*)?(?::\s*)?",
    re.IGNORECASE,
)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)|\n")
_FINAL_CHOICE_RE = re.compile(  # the prefix in any case, the letter upper-case only ("e" is a variable)
    r"^(?i:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is\s*)?:?\s*)?"
    r"[(\[]?([A-J])[)\]]?\.?$"
)


def extract_answer(response: str) -> str | None:
    r"""The final answer written in ``response``, or None when it states none.

    Tried in order, the first that yields a non-empty string wins:

    1. the last balanced ``\boxed{...}`` / ``\fbox{...}`` (nested braces allowed, ``\boxed {x}``);
       "last" is by opening position, so ``\boxed{\boxed{x}}`` gives ``x``;
    2. the last ``<answer>...</answer>`` (an unterminated tag at the very end counts);
    3. the last "the (final) answer is X" / "Final answer: X" phrase, X up to the end of its
       sentence or line;
    4. a final line that is only a choice letter: ``(B)``, ``B.``, ``Option B``.

    Only the last ``MAX_RESPONSE_CHARS`` characters are searched.

    >>> extract_answer(r"so x = \boxed{\frac{1}{2}}.")
    '\\frac{1}{2}'
    >>> extract_answer(r"first \boxed{1}, then \boxed{2}")
    '2'
    >>> extract_answer("<think>..</think><answer> 42 </answer>")
    '42'
    >>> extract_answer("Thus the final answer is 7. Done.")
    '7'
    >>> extract_answer("I pick\n(C)")
    'C'
    >>> extract_answer("no idea") is None
    True
    """
    if not response:
        return None
    text = response[-MAX_RESPONSE_CHARS:]
    for finder in (_last_box, _last_answer_tag, _last_answer_phrase, _final_choice_line):
        found = finder(text)
        if found:
            return found
    return None


def _balanced_end(text: str, start: int) -> int | None:
    """Index of the ``}`` closing the group whose content starts at ``start``; None if unclosed."""
    depth = 1
    for token in _BRACE_TOKEN_RE.finditer(text, start):
        char = token.group()
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return token.start()
    return None


def _last_box(text: str) -> str | None:
    # Fast path: the last box command is usually balanced; scanning it costs O(tail).
    last = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if last < 0:
        return None
    match = _BOX_START_RE.match(text, last)
    if match:
        end = _balanced_end(text, match.end())
        if end is not None:
            return text[match.end() : end].strip() or None
    # Slow path, still one linear pass: track open groups, remember the last-opened closed box.
    stack: list[tuple[int, bool]] = []
    best: tuple[int, int] | None = None  # (content start, content end) of the last-opened closed box
    for token in _TOKEN_WITH_BOX_RE.finditer(text):
        char = token.group()
        if char == "{":
            stack.append((token.end(), False))
        elif char == "}":
            if stack:
                content_start, is_box = stack.pop()
                if is_box and (best is None or content_start > best[0]):
                    best = (content_start, token.start())
        elif char[-1] == "{":  # a box command with its opening brace
            stack.append((token.end(), True))
    if best is None:
        return None
    return text[best[0] : best[1]].strip() or None


def _last_answer_tag(text: str) -> str | None:
    start = text.rfind("<answer>")
    if start < 0:
        return None
    start += len("<answer>")
    end = text.find("</answer>", start)
    content = text[start:] if end < 0 else text[start:end]
    if end < 0 and len(content) > 200:  # unterminated and long: not an answer
        return None
    content = content.strip()
    return (_last_answer_phrase(content) or _strip_decoration(content)) or None


def _last_answer_phrase(text: str) -> str | None:
    last = None
    for last in _PHRASE_RE.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    rest = text[last.end() : last.end() + 300]
    cut = _SENTENCE_END_RE.search(rest)
    candidate = _strip_decoration(rest[: cut.start()] if cut else rest)
    return candidate or None


def _final_choice_line(text: str) -> str | None:
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :]
    if len(line) > 40:
        return None
    match = _FINAL_CHOICE_RE.match(_strip_decoration(line))
    return match.group(1) if match else None


def _strip_decoration(text: str) -> str:
    """Remove markdown emphasis, math dollars and a trailing period around a short answer."""
    return text.strip().strip("*#`").strip().strip("$").strip().rstrip(".").strip()


# ============================================================================ canonical form
_TEXT_CMD_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|mathrm|mathbf|mathit|mathsf|mathtt|mbox|operatorname)"
    r"\s*\{([^{}]*)\}"
)
_BOX_WRAP_RE = re.compile(r"^\\(?:boxed|fbox)\s*\{(.*)\}$", re.DOTALL)
_SIZING_RE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![A-Za-z])")
_SPACING_RE = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])")
_PERCENT_RE = re.compile(r"\\?%")
_FRAC_SHORT_RE = re.compile(r"\\[dt]?frac\s*(\{[^{}]*\}|[0-9A-Za-z])\s*(\{[^{}]*\}|[0-9A-Za-z])")
_SQRT_SHORT_RE = re.compile(r"\\sqrt\s*([0-9A-Za-z])")
_ASSIGNMENT_RE = re.compile(r"^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?\s*=\s*(?=\S)")
_CHOICE_RE = re.compile(
    r"^(?:(option|choice|answer)\s*(?:is\s*)?:?\s*)?([(\[])?\s*([A-Ja-j])\s*([)\]])?\s*[.:]?$",
    re.IGNORECASE,
)
_CHOICE_WITH_TEXT_RE = re.compile(r"^(?:\(([A-J])\)|([A-J])[.:)])\s+\S")
_UNIT_WORDS = (
    "cm|mm|km|m|in|inch|inches|ft|feet|foot|yd|yards?|mi|miles?|meters?|metres?|centimeters?|"
    "centimetres?|kilometers?|kilometres?|millimeters?|kg|mg|g|grams?|kilograms?|lbs?|pounds?|"
    "s|sec|seconds?|mins?|minutes?|h|hrs?|hours?|days?|weeks?|years?|ml|l|liters?|litres?|"
    "deg|degrees?|units?|square\\s+units|sq\\s+units|dollars?|cents?|yuan|rad|radians?"
)
_UNIT_RE = re.compile(r"^(.*?[0-9}.])\s*(?:" + _UNIT_WORDS + r")(?:\s*(?:\^\s*\{?[23]\}?|²|³))?\s*$")
_SPACE_RE = re.compile(r"\s+")
_DROPPABLE_SPACE_RE = re.compile(r"(?<![A-Za-z]) | (?![A-Za-z])")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+"
_NUMBER_RE = re.compile(rf"^(?:{_NUMBER})$")
_SLASH_FRACTION_RE = re.compile(rf"^([+-]?)({_NUMBER})/({_NUMBER})$")
_LATEX_FRACTION_RE = re.compile(rf"^([+-]?)\\frac\{{({_NUMBER})\}}\{{({_NUMBER})\}}$")
_SCIENTIFIC_RE = re.compile(rf"^({_NUMBER})(?:[eE]|(?:\\times|\\cdot|\*)10\^)\{{?([+-]?\d{{1,3}})\}}?$")
MAX_DECIMAL_PLACES = MAX_NUMBER_CHARS


@lru_cache(maxsize=65_536)
def canonical_answer(raw: str) -> str:
    r"""The canonical string of an extracted answer (idempotent, cached).

    Removes ``$``, ``\text{}``-style wrappers, ``\left``/``\right``, spacing commands, degree
    and percent signs, a trailing period, a trailing unit word after a number (``5 cm``), a
    leading ``x =``, and spaces (a space between two letters is kept: ``\cdot x``). ``\dfrac``
    and ``\tfrac`` become ``\frac``. Numbers become exact: an integer, a terminating decimal
    (when it has at most ``MAX_DECIMAL_PLACES`` places) or ``p/q``. Choice letters become the
    letter. Plain words are lowercased. Inputs longer than ``MAX_CANONICAL_CHARS`` are only
    whitespace-normalised.

    >>> [canonical_answer(x) for x in ["05", "2.50", "1,000", r"\dfrac12", "1/2", "3.0"]]
    ['5', '2.5', '1000', '0.5', '0.5', '3']
    >>> [canonical_answer(x) for x in ["(B)", "B.", "option b", r"90^\circ", r"50\%", r"\frac{1}{3}"]]
    ['B', 'B', 'B', '90', '50', '1/3']
    >>> canonical_answer(r"\left( 1 , 2.50 \right)")
    '(1,2.5)'
    """
    text = _SPACE_RE.sub(" ", raw.strip())  # single spaces from here on: no long runs to backtrack over
    if len(text) > MAX_CANONICAL_CHARS:
        return text
    if _NUMBER_RE.match(text):  # the common case, settled at once
        number = _to_fraction(text)
        if number is not None:
            return format_number(number)
    # One pass can expose more to strip ("\boxed{1,000}." loses its period, then its box), so
    # passes repeat until nothing changes: that makes the result idempotent.
    for _ in range(4):
        cleaned = _canonical_pass(text)
        if cleaned == text:
            break
        text = cleaned
    return text


def _canonical_pass(text: str) -> str:
    text = text.replace("\\$", "").replace("$", "")
    if text.startswith("\\(") and text.endswith("\\)") or text.startswith("\\[") and text.endswith("\\]"):
        text = text[2:-2]
    text = text.strip().strip("*").strip()
    for _ in range(3):  # boxes and text wrappers may nest a few levels
        box = _BOX_WRAP_RE.match(text)
        if box and _balanced_end(text, text.index("{") + 1) == len(text) - 1:
            text = box.group(1).strip()
        text = _TEXT_CMD_RE.sub(r"\1", text)
    text = _SIZING_RE.sub("", text)
    text = _SPACING_RE.sub(" ", text)
    text = text.replace("{,}", ",")
    text = _DEGREE_RE.sub("", text)
    text = _PERCENT_RE.sub("", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _SPACE_RE.sub(" ", text).strip().rstrip(".").strip()

    letter = _choice_letter(text)
    if letter:
        return letter
    if text.count("=") == 1 and "<" not in text and ">" not in text:
        text = _ASSIGNMENT_RE.sub("", text)
    unit = _UNIT_RE.match(text)
    if unit and _parse_number(_compact(unit.group(1))) is not None:
        text = unit.group(1)
    if _WORDS_RE.match(text) and any(c.islower() for c in text):
        return text.lower()

    text = _compact(text)
    text = _FRAC_SHORT_RE.sub(
        lambda m: f"\\frac{{{m.group(1).strip('{}')}}}{{{m.group(2).strip('{}')}}}", text
    )
    text = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", text)
    number = _parse_number(text)
    if number is not None:
        return format_number(number)
    return _normalise_tuple(text)


def _compact(text: str) -> str:
    """Drop spaces except between two letters (``\\cdot x`` must not become ``\\cdotx``)."""
    return _DROPPABLE_SPACE_RE.sub("", _SPACE_RE.sub(" ", text.strip()))


def _choice_letter(text: str) -> str | None:
    match = _CHOICE_RE.match(text)
    if match:
        prefix, opening, letter, closing = match.groups()
        # A bare lowercase letter is a variable ("x", "e"), not a choice.
        if letter.isupper() or prefix or (opening and closing):
            return letter.upper()
        return None
    match = _CHOICE_WITH_TEXT_RE.match(text)
    if match:
        return match.group(1) or match.group(2)
    return None


def _to_fraction(number: str) -> Fraction | None:
    if len(number) > MAX_NUMBER_CHARS:
        return None
    try:
        return Fraction(number.replace(",", "").rstrip("."))
    except (ValueError, ZeroDivisionError):
        return None


def _parse_number(text: str) -> Fraction | None:
    """The exact value of a plain number, ``a/b``, ``\\frac{a}{b}`` or ``a\\times10^{k}``."""
    if len(text) > MAX_NUMBER_CHARS or not text:
        return None
    if _NUMBER_RE.match(text):
        return _to_fraction(text)
    match = _SLASH_FRACTION_RE.match(text) or _LATEX_FRACTION_RE.match(text)
    if match:
        sign, top, bottom = match.groups()
        num, den = _to_fraction(top), _to_fraction(bottom)
        if num is None or den is None or den == 0:
            return None
        value = num / den
        return -value if sign == "-" else value
    match = _SCIENTIFIC_RE.match(text)
    if match:
        mantissa = _to_fraction(match.group(1))
        return None if mantissa is None else mantissa * Fraction(10) ** int(match.group(2))
    return None


def format_number(value: Fraction) -> str:
    """An exact, unique string for a rational: ``"3"``, ``"-2.5"`` or ``"1/3"``.

    >>> format_number(Fraction(5, 2)), format_number(Fraction(-1, 3)), format_number(Fraction(0))
    ('2.5', '-1/3', '0')
    """
    num, den = value.numerator, value.denominator
    if den == 1:
        return str(num)
    twos = (den & -den).bit_length() - 1
    rest = den >> twos
    fives = 0
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    places = max(twos, fives)
    if rest != 1 or places > MAX_DECIMAL_PLACES:
        return f"{num}/{den}"
    scaled = abs(num) * 10**places // den
    digits = str(scaled).rjust(places + 1, "0")
    body = f"{digits[:-places]}.{digits[-places:]}".rstrip("0")
    return ("-" if num < 0 else "") + body


def _normalise_tuple(text: str) -> str:
    """Canonicalise the numbers inside ``(a,b)`` / ``[a,b)`` style tuples and intervals."""
    if len(text) < 3 or text[0] not in "([" or text[-1] not in ")]":
        return text
    parts = _split_top_level(text[1:-1])
    if len(parts) < 2:
        return text
    out = []
    for part in parts:
        number = _parse_number(part)
        out.append(part if number is None else format_number(number))
    return text[0] + ",".join(out) + text[-1]


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


# ============================================================================ keys and equivalence
def equivalence_key(answer: str) -> str:
    r"""The voting key of an extracted answer: answers with equal keys are one vote.

    It is the canonical form, with numbers written as exact rationals (``"1/2"``, ``"-3"``).
    Voting groups a prompt's responses by this key and then merges the few remaining distinct
    keys of the group with ``answers_equivalent`` (at most n*(n-1)/2 pairs for n <= 64 responses,
    almost all settled by the fast path).

    >>> equivalence_key("0.50") == equivalence_key(r"\frac{1}{2}") == equivalence_key("1/2") == "1/2"
    True
    >>> equivalence_key("(B)") == equivalence_key("B") == "B"
    True
    """
    canonical = canonical_answer(answer)
    number = _parse_number(canonical)
    if number is None:
        return canonical
    return str(number)


def answer_number(answer: str) -> Fraction | None:
    """The exact value of an answer that is a plain number (after canonicalisation), else None."""
    return _parse_number(canonical_answer(answer))


def answers_equivalent(a: str, b: str, *, symbolic: bool = True, timeout: float = SYMBOLIC_TIMEOUT_S) -> bool:
    r"""Whether two extracted answers state the same thing (symmetric).

    Fast path: equal canonical forms, or exact rational comparison when both are numbers, or
    unequal choice letters / words. Slow path (only if ``symbolic`` and both sides look like
    maths, at least one not a plain number, each at most ``MAX_SYMBOLIC_CHARS``): math-verify's
    LaTeX parser and ``verify`` in a worker process, killed after ``timeout`` seconds (a timeout
    counts as "not equivalent"). Results are cached.

    >>> answers_equivalent("0.5", r"\frac{1}{2}"), answers_equivalent("(B)", "B."), answers_equivalent("2", "3")
    (True, True, False)
    """
    key_a, key_b = equivalence_key(a), equivalence_key(b)
    if key_a == key_b:
        return True
    if not symbolic:
        return False
    if not needs_symbolic_check(a, b):
        return False
    first, second = sorted((canonical_answer(a), canonical_answer(b)))
    return _symbolic_equal(first, second, float(timeout))


def needs_symbolic_check(a: str, b: str) -> bool:
    """Whether ``answers_equivalent(a, b)`` would consult math-verify (lets callers budget it).

    >>> needs_symbolic_check("1/2", "0.5"), needs_symbolic_check("2", "3"), needs_symbolic_check("x+1", "1+x")
    (False, False, True)
    """
    key_a, key_b = equivalence_key(a), equivalence_key(b)
    if key_a == key_b:
        return False
    if _parse_number(key_a) is not None and _parse_number(key_b) is not None:
        return False  # both exact numbers: already compared exactly
    return looks_symbolic(key_a) and looks_symbolic(key_b)


_FUNCTION_WORDS = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "log",
        "ln",
        "exp",
        "sqrt",
        "pi",
        "det",
        "gcd",
        "lcm",
        "min",
        "max",
        "mod",
        "inf",
        "infty",
    ]
)
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_LETTER_RUN_RE = re.compile(r"[A-Za-z]{3,}")
_MATH_CHAR_RE = re.compile(r"[0-9\\^_{}()\[\]+\-*/=<>|]")


def looks_symbolic(canonical: str) -> bool:
    r"""Whether a canonical answer looks like a number or formula, worth a symbolic check.

    Choice letters, prose and anything longer than ``MAX_SYMBOLIC_CHARS`` are not: math-verify
    would read ``yes`` as the product ``y*e*s`` and call it equal to ``sey``.

    >>> looks_symbolic(r"\frac{\pi}{2}"), looks_symbolic("x+1"), looks_symbolic("B"), looks_symbolic("yes")
    (True, True, False, False)
    """
    if not canonical or len(canonical) > MAX_SYMBOLIC_CHARS:
        return False
    if len(canonical) == 1 and canonical in CHOICE_LETTERS:
        return False
    if not _MATH_CHAR_RE.search(canonical):
        return False
    bare = _COMMAND_RE.sub(" ", canonical)
    return all(word.lower() in _FUNCTION_WORDS for word in _LETTER_RUN_RE.findall(bare))


@lru_cache(maxsize=16_384)
def _symbolic_equal(first: str, second: str, timeout: float) -> bool:
    result = _WORKER.compare(first, second, timeout)
    return bool(result)


# ============================================================================ symbolic worker
def _worker_loop() -> None:  # pragma: no cover - runs in the child process
    """Child process: read ``[a, b]`` JSON lines on stdin, answer ``true``/``false`` lines.

    The protocol goes over a private copy of the original stdout; fd 1 is pointed at stderr
    so that anything a library prints cannot corrupt it.
    """
    try:
        import resource

        limit = 4 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]
    protocol.write("ready\n")
    for line in sys.stdin:
        try:
            first, second = json.loads(line)
            gold = parse(f"${first}$", extraction_config=config, parsing_timeout=None)
            target = parse(f"${second}$", extraction_config=config, parsing_timeout=None)
            verdict = bool(gold and target and verify(gold, target, timeout_seconds=None))
        except BaseException:  # noqa: BLE001 - any failure (RecursionError, MemoryError) is "no"
            verdict = False
        protocol.write("true\n" if verdict else "false\n")


_WORKER_BOOT = "import sys; sys.path.insert(0, {root!r}); import mmupt.answers as a; a._worker_loop()"


class _SymbolicWorker:
    """One lazily started child process running math-verify, killed and replaced on timeout.

    A plain subprocess (not ``multiprocessing``): it never re-imports the caller's ``__main__``
    and can be started from any thread or from a daemonic worker process. Calls are serialised
    by a lock (the slow path is rare), which makes the worker safe to use from any thread,
    which a ``signal.alarm`` timeout is not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._disabled = False
        self.timeouts = 0

    def _start(self) -> bool:
        if self._disabled:
            return False
        root = str(Path(__file__).resolve().parent.parent)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_BOOT.format(root=root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as err:
            logger.warning("symbolic answer checks disabled: cannot start the math-verify worker (%s)", err)
            self._disabled = True
            return False
        self._process, self._buffer = process, b""
        if self._read_line(WORKER_START_TIMEOUT_S) != b"ready":
            logger.warning("symbolic answer checks disabled: the math-verify worker did not start")
            self._kill()
            self._disabled = True
            return False
        return True

    def _read_line(self, timeout: float) -> bytes | None:
        """One line from the worker within ``timeout`` seconds; None on timeout or exit."""
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.strip()

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(5)
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
        self._process, self._buffer = None, b""

    def compare(self, first: str, second: str, timeout: float) -> bool | None:
        """math-verify's verdict, or None when it timed out or the worker is unavailable."""
        with self._lock:
            alive = self._process is not None and self._process.poll() is None
            if not alive:
                self._kill()
                if not self._start():
                    return None
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write((json.dumps([first, second]) + "\n").encode())
                self._process.stdin.flush()
            except OSError:
                self._kill()
                return None
            line = self._read_line(max(timeout, 0.0))
            if line is not None:
                return line == b"true"
            self.timeouts += 1
            logger.warning("symbolic comparison timed out after %.1fs; counted as not equivalent", timeout)
            self._kill()
            return None

    def close(self) -> None:
        with self._lock:
            self._kill()

    def forget_after_fork(self) -> None:
        """In a forked child: drop (without killing) the parent's worker and lock state."""
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
        self._lock = threading.Lock()
        self._process, self._buffer = None, b""


_WORKER = _SymbolicWorker()
atexit.register(_WORKER.close)
if hasattr(os, "register_at_fork"):
    # A forked child (e.g. a data-loader worker) must not talk over the parent's pipes.
    os.register_at_fork(after_in_child=_WORKER.forget_after_fork)


def symbolic_timeouts() -> int:
    """How many symbolic comparisons timed out in this process (for stage statistics)."""
    return _WORKER.timeouts
