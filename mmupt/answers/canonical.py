r"""Canonical answers and voting keys: one string per way of writing the same answer.

``canonical_answer`` removes LaTeX noise, normalises numbers and reduces choice letters;
``equivalence_key`` is what voting groups by (numbers as exact rationals), so answers with one
key are one vote without further work.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from functools import lru_cache

from mmupt.answers.extract import balanced_end

MAX_CANONICAL_CHARS = 1_000
"""Longer "answers" are only whitespace-normalised: real final answers are short, and this
keeps canonicalisation of garbage cheap."""

MAX_SYMBOLIC_CHARS = 200
"""Answers longer than this never go to the symbolic check."""

MAX_NUMBER_CHARS = 64
"""Longer digit strings are not treated as numbers (bounds big-integer work)."""

CHOICE_LETTERS = "ABCDEFGHIJ"

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
    whitespace-normalised. Invisible characters go first (``normalise_unicode``).

    >>> [canonical_answer(x) for x in ["05", "2.50", "1,000", r"\dfrac12", "1/2", "3.0"]]
    ['5', '2.5', '1000', '0.5', '0.5', '3']
    >>> [canonical_answer(x) for x in ["(B)", "B.", "option b", r"90^\circ", r"50\%", r"\frac{1}{3}"]]
    ['B', 'B', 'B', '90', '50', '1/3']
    >>> canonical_answer(r"\left( 1 , 2.50 \right)")
    '(1,2.5)'
    >>> canonical_answer("2\u200b") == canonical_answer("\uff12") == "2"
    True
    """
    text = _SPACE_RE.sub(
        " ", normalise_unicode(raw).strip()
    )  # single spaces from here on: no long runs to backtrack over
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


_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_WIDTH[0x3000] = 0x20  # ideographic space
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


def normalise_unicode(text: str) -> str:
    """Drop invisible format characters (zero-width, bidi marks) and map full-width forms to ASCII.

    Why not plain NFKC, as is common: it also rewrites superscripts and vulgar fractions
    (``x²`` -> ``x2``, ``½`` -> ``1⁄2``), which changes the mathematics. Here NFKC is applied only
    to space characters; the rest is NFC.
    """
    if text.isascii():
        return text
    # One translate over the text, with a table for just the non-ASCII characters it holds:
    # a per-character Python loop over whole responses was 40% of MathVista's scoring time.
    table: dict[int, int | None] = {}
    for char in set(_NON_ASCII_RE.findall(text)):
        code = ord(char)
        if unicodedata.category(char) == "Cf":
            table[code] = None
        elif code in _FULL_WIDTH:
            table[code] = _FULL_WIDTH[code]
        elif char.isspace():
            table[code] = 0x20
    return unicodedata.normalize("NFC", text.translate(table))


def _canonical_pass(text: str) -> str:
    text = text.replace("\\$", "").replace("$", "")
    if text.startswith("\\(") and text.endswith("\\)") or text.startswith("\\[") and text.endswith("\\]"):
        text = text[2:-2]
    text = text.strip().strip("*").strip()
    for _ in range(3):  # boxes and text wrappers may nest a few levels
        box = _BOX_WRAP_RE.match(text)
        if box and balanced_end(text, text.index("{") + 1) == len(text) - 1:
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
    if unit and parse_number(_compact(unit.group(1))) is not None:
        text = unit.group(1)
    if _WORDS_RE.match(text) and any(c.islower() for c in text):
        return text.lower()

    text = _compact(text)
    text = _FRAC_SHORT_RE.sub(
        lambda m: f"\\frac{{{m.group(1).strip('{}')}}}{{{m.group(2).strip('{}')}}}", text
    )
    text = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", text)
    number = parse_number(text)
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


def parse_number(text: str) -> Fraction | None:
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
        number = parse_number(part)
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
    number = parse_number(canonical)
    if number is None:
        return canonical
    return str(number)


def answer_number(answer: str) -> Fraction | None:
    """The exact value of an answer that is a plain number (after canonicalisation), else None."""
    return parse_number(canonical_answer(answer))


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
