r"""MATH-Vision scoring: the official rule-based procedure, re-implemented without ``eval``.

Official procedure (``evaluation/evaluate.py`` + ``utils.py`` of mathllm/MATH-V), step by step:

1. answer extraction from the response: a few option-letter shapes (``... C.``, ``(C)\n...``);
   a bare number after the last "is "; without a box, the text after "the (final/correct) answer
   is" / "the answer should be" up to the end of its line or sentence; with several boxes, only
   the last one;
2. ``find_math_answer``: lower-case, the content of the box, the part after the last ``=`` /
   ``\approx``, LaTeX noise and some units removed, then the MATH ``_strip_string`` normalisation;
3. ``is_equal(gold, answer) or is_equal(gold option text, answer)``: case-insensitive string
   equality, tuples compared element-wise after rounding to 2 places, otherwise both values
   rounded to 2 decimals must be equal.

Differences (documented in docs/EVALUATION.md): numeric values come from ``latexnum`` instead of
``eval(latex2sympy(.))``, matching what latex2sympy reads: the valid leading expression with
trailing brackets or punctuation ignored (``\frac{7}{32}}.``), a ratio ``3:2`` as the division
1.5, integer powers such as ``3^{1009}`` compared exactly (a bare ``e`` is not Euler's number);
the gold is cleaned of ``$``/``\boxed{}``.

Strict-official by default. A lenient variant also compares the option text after the same
``find_math_answer`` normalisation as the response (``$90^{\circ}$`` matches ``90``); a verdict
that only it finds right stays wrong, is noted ``lenient_only`` and counted in the separate
``accuracy_lenient`` rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmupt.latexnum import latex_value
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

BREAKDOWNS: tuple[tuple[str, ...], ...] = (("level",), ("subject",), ("subject", "level"))
LENIENT_ONLY = "lenient_only"
MAX_EXACT_EXPONENT = 10_000
"""``a^{b}`` with ``b`` up to this is compared exactly, as an integer (bounds the big-integer work)."""
_RATIO_RE = re.compile(r"^(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$")
_INT_POWER_RE = re.compile(r"^(-?\d{1,6})\^\{?(\d{1,5})\}?$")
_PHRASES = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")


# ---------------------------------------------------------------------------- MATH normalisation
def _fix_fracs(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{72}`` -> ``\\frac{1}{72}``."""
    parts = text.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part.startswith("{"):
            out += part
            continue
        if len(part) < 2:
            return text
        a, b, rest = part[0], part[1], part[2:]
        out += "{" + a + "}" + (b if b == "{" else "{" + b + "}") + rest
    return out


def _fix_a_slash_b(text: str) -> str:
    """``3/4`` (two plain integers) -> ``\\frac{3}{4}``."""
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return text
    return f"\\frac{{{a}}}{{{b}}}" if text == f"{a}/{b}" else text


def _fix_sqrt(text: str) -> str:
    """``\\sqrt3`` -> ``\\sqrt{3}``."""
    parts = text.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        out += "\\sqrt{" + part[0] + "}" + part[1:] if part and part[0] != "{" else "\\sqrt" + part
    return out


def strip_string(text: str) -> str:
    """The MATH benchmark's answer normalisation as MATH-V's ``_strip_string`` applies it."""
    for old, new in (
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
        ("$", ""),
    ):
        text = text.replace(old, new)
    text = text.split("\\text{ ")[0]  # units written as "\text{ cm}"
    text = text.replace("\\%", "")  # only the escaped percent sign, as officially
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    if len(text.split("=")) == 2:
        text = text.split("=")[-1]
    if len(text.split("\\approx")) == 2:
        text = text.split("\\approx")[-1]
    if "sqrt" in text:
        text = _fix_sqrt(text)
    text = text.replace(" ", "")
    if "sqrt" in text:
        text = _fix_fracs(text)
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _fix_a_slash_b(text)


def find_math_answer(text: str) -> str:
    """The official ``find_math_answer``: box content (greedy, first ``oxed{`` to last ``}``), cleaned.

    The official regex ``oxed{(.*)}`` (DOTALL) captures from the first ``oxed{`` to the last
    ``}``; it is computed here with ``find``/``rfind`` (same result, linear time).
    """
    text = text.lower().replace("{}", "")
    start, end = text.find("oxed{"), text.rfind("}")
    answer = text[start + 5 : end] if start >= 0 and end >= start + 5 else text
    close, open_ = answer.find("}"), answer.find("{")
    if close != -1 and (open_ == -1 or close < open_):
        answer = answer.split("}")[0]
    answer = answer.split("=")[-1].split("\\approx")[-1]
    for old, new in (
        (" ", ""),
        ("\\,", ""),
        ("∞", "\\infty"),
        ("+\\infty", "\\infty"),
        ("\\\\", "\\"),
        ("\n", ""),
        ("\\text", ""),
        ("\\mbox", ""),
        ("bmatrix", "pmatrix"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\displaystyle", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("{m}^3", ""),
        ("m^3", ""),
        ("{units}", ""),
        ("units", ""),
        ("{km}", ""),
        ("km", ""),
    ):
        answer = answer.replace(old, new)
    return strip_string(answer)


# ---------------------------------------------------------------------------- extraction
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def extract(response: str) -> str:
    """The official ``model_answer`` of a response (evaluate.py's extraction, then find_math_answer)."""
    answer = response.strip()
    for c in "ABCDE":
        if answer.endswith((f" {c}.", f" ({c}).")) or answer.startswith(
            (f"{c}\n", f"({c})\n", f"({c}) {c}\n")
        ):
            answer = c
    after_is = answer.split("is ")[-1].rstrip(".")
    if _is_number(after_is):
        answer = after_is
    if "oxed{" not in answer:
        for phrase in _PHRASES:
            for flag in (phrase, phrase.replace("the", "The")):
                had = flag in answer
                answer = answer.split(flag)[-1].strip()
                if had:
                    answer = answer.split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    answer = find_math_answer(answer)
    for letter in "abcde":
        answer = answer.replace(f"({letter})", letter).replace(f"{{{letter}}}", letter)
    return answer.rstrip(".").lstrip(":").strip()


# ---------------------------------------------------------------------------- equality
def _round2(value: float) -> float:
    return round(value, 2)


def eval_tuple(text: str) -> str:
    """``(a,b,...)`` / ``[a,b,...]`` with every element replaced by its value rounded to 2 places.

    Elements containing ``infty`` and the symbols ``a``/``-a`` are kept; if any other element has
    no value, the string is returned unchanged (the official function's ``except``).
    """
    if len(text) < 2 or (text[0], text[-1]) not in (("(", ")"), ("[", "]")):
        return text
    elements = text[1:-1].split(",")
    if len(elements) <= 1:
        return text
    out = []
    for element in elements:
        if "infty" in element or element in ("a", "-a"):
            out.append(element)
            continue
        value = latex_value(element)
        if value is None:
            return text
        out.append(repr(_round2(value)))
    return text[0] + ",".join(out) + text[-1]


def is_equal(answer: str, gold: str) -> bool:
    """The official ``is_equal``: string match, tuple match, or equal values at 2 decimals."""
    answer, gold = answer.lower(), gold.lower()
    if not answer.replace(" ", "") or not gold.replace(" ", ""):
        return False
    if answer.strip() == gold.strip():
        return True
    answer, gold = eval_tuple(answer), eval_tuple(gold)
    if answer == gold:
        return True
    exact_a, exact_b = _exact_integer(gold), _exact_integer(answer)
    if exact_a is not None and exact_b is not None:
        return exact_a == exact_b
    a, b = _value(gold), _value(answer)
    return a is not None and b is not None and _round2(a) == _round2(b)


def _exact_integer(text: str) -> int | None:
    """An integer or integer power (``3^{1009}``) as an exact int; floats would overflow or round."""
    text = text.strip()
    if re.fullmatch(r"-?\d{1,4000}", text):
        return int(text)
    match = _INT_POWER_RE.match(text)
    if match and int(match.group(2)) <= MAX_EXACT_EXPONENT:
        return int(match.group(1)) ** int(match.group(2))
    return None


def _value(text: str) -> float | None:
    """What ``eval(latex2sympy(text))`` gives for numeric LaTeX: a ratio ``a:b`` is ``a/b``."""
    ratio = _RATIO_RE.match(text.strip())
    if ratio:
        top, bottom = float(ratio.group(1)), float(ratio.group(2))
        return top / bottom if bottom else None
    return latex_value(text, trailing_junk=True)


# ---------------------------------------------------------------------------- scorer
def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    answer = extract(tail(response))
    options: list[str] = item.meta.get("options") or []
    gold_value = options[ord(item.gold) - ord("A")] if options else ""
    correct = is_equal(item.gold, answer) or is_equal(gold_value, answer)
    if not correct and gold_value and is_equal(find_math_answer(gold_value), answer):
        return Verdict(answer, False, LENIENT_ONLY)
    return Verdict(answer or None, correct, None if answer else NO_ANSWER)


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    lenient = [Verdict(v.extracted, v.correct or v.note == LENIENT_ONLY, v.note) for v in verdicts]
    return accuracy_rows(items, verdicts, BREAKDOWNS) + accuracy_rows(
        items, lenient, (), metric="accuracy_lenient"
    )
