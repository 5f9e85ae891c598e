r"""A small, safe numeric evaluator for short LaTeX answers (``\frac{6-\sqrt{2}}{2}`` -> 2.2929).

Why: MATH-V's official ``is_equal`` turns both answers into numbers with
``eval(str(latex2sympy(x)))`` and compares them rounded to two decimals. ``eval`` of model text is
forbidden here, and latex2sympy is not a dependency, so this module re-implements exactly the
part the rule needs: the numeric value of an expression built from numbers, ``+ - * /``,
``\cdot``, ``\times``, ``\div``, ``^``, parentheses/braces, ``\frac``, ``\sqrt`` (with optional
index), ``\pi`` and ``\sin \cos \tan \ln \log \exp``, with implicit multiplication
(``2\sqrt{3}``). Anything else (a variable, a unit, text) has no value: ``None``, which is what
the official rule's ``eval`` raising NameError amounts to.

Bounded: inputs over ``MAX_CHARS`` are refused, nesting is limited, and powers with a large
exponent are refused instead of computed.
"""

from __future__ import annotations

import math
import re

MAX_CHARS = 160
MAX_DEPTH = 40
MAX_EXPONENT = 1024

_TOKEN_RE = re.compile(r"(\d+\.?\d*|\.\d+)|(\\[A-Za-z]+)|(\S)")
_FUNCTIONS = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "ln": math.log,
    "log": math.log,
    "exp": math.exp,
}
_REPLACEMENTS = (
    ("\\left", ""),
    ("\\right", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("\\ ", ""),
    ("\\cdot", "*"),
    ("\\times", "*"),
    ("\\div", "/"),
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("$", ""),
)


class _NoValue(Exception):
    pass


TRAILING_JUNK = frozenset("}).],;:!?")
"""Tokens that ``trailing_junk=True`` ignores after a complete expression."""


def _ignorable(rest: list[str]) -> bool:
    r"""What latex2sympy skips after the valid leading expression: closing punctuation, or anything
    after an unmatched ``}`` (its parse ends there: ``6\sqrt{2}}centimeters`` reads as 6 sqrt 2)."""
    return rest[0] == "}" or all(token in TRAILING_JUNK for token in rest)


def latex_value(text: str, *, functions: bool = True, trailing_junk: bool = False) -> float | None:
    r"""The numeric value of ``text``, or None when it is not a closed numeric expression.

    ``functions=False`` refuses ``\sin`` & co. (whose argument may be meant in degrees).
    ``trailing_junk=True`` reads the valid leading expression and ignores closing brackets and
    punctuation after it, as latex2sympy does (``\frac{7}{32}}.`` is 7/32), and anything after an
    unmatched ``}``; otherwise a trailing letter still means "not a number".

    >>> latex_value(r"\frac{1}{2}"), latex_value("2^{3}"), latex_value(r"2\sqrt{4}"), latex_value("x+1")
    (0.5, 8.0, 4.0, None)
    """
    if not text or len(text) > MAX_CHARS:
        return None
    for old, new in _REPLACEMENTS:
        text = text.replace(old, new)
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        tokens.append(match.group(0))
    if not tokens:
        return None
    parser = _Parser(tokens, functions)
    try:
        value = parser.expression(0)
        rest = tokens[parser.position :]
        if rest and not (trailing_junk and _ignorable(rest)):
            return None
    except (_NoValue, ZeroDivisionError, OverflowError, ValueError, RecursionError):
        return None
    if isinstance(value, complex) or not math.isfinite(value):
        return None
    return float(value)


class _Parser:
    """Recursive descent over the token list; every method raises ``_NoValue`` on anything unknown."""

    def __init__(self, tokens: list[str], functions: bool) -> None:
        self.tokens = tokens
        self.position = 0
        self.functions = _FUNCTIONS if functions else {}

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if token is None or (expected is not None and token != expected):
            raise _NoValue
        self.position += 1
        return token

    def expression(self, depth: int) -> float:
        if depth > MAX_DEPTH:
            raise _NoValue
        value = self.term(depth)
        while self._peek() in ("+", "-"):
            if self._take() == "+":
                value += self.term(depth)
            else:
                value -= self.term(depth)
        return value

    def term(self, depth: int) -> float:
        value = self.unary(depth)
        while True:
            token = self._peek()
            if token == "*":
                self._take()
                value *= self.unary(depth)
            elif token == "/":
                self._take()
                value /= self.unary(depth)
            elif token is not None and self._starts_primary(token):
                value *= self.power(depth)  # implicit multiplication: 2\sqrt{3}, 3\pi, 2(1+1)
            else:
                return value

    def _starts_primary(self, token: str) -> bool:
        if token in ("(", "{") or token[0].isdigit() or token[0] == ".":
            return True
        return token.startswith("\\") and (token[1:] in ("frac", "sqrt", "pi") or token[1:] in self.functions)

    def unary(self, depth: int) -> float:
        token = self._peek()
        if token in ("+", "-"):
            self._take()
            value = self.unary(depth + 1)
            return -value if token == "-" else value
        return self.power(depth)

    def power(self, depth: int) -> float:
        base = self.primary(depth)
        if self._peek() != "^":
            return base
        self._take()
        token = self._peek()
        if token is not None and token[0].isdigit():
            digits = self._take()
            if len(digits) > 1:
                raise _NoValue  # "2^10" is 2^1 0 in LaTeX, not 2^{10}: refuse rather than guess
            exponent = float(digits)
        else:
            exponent = self.unary(depth + 1) if token == "-" else self.primary(depth + 1)
        if abs(exponent) > MAX_EXPONENT:
            raise _NoValue
        return base**exponent

    def group(self, depth: int) -> float:
        if self._peek() == "{":
            self._take()
            value = self.expression(depth + 1)
            self._take("}")
            return value
        token = self._take()
        if token[0].isdigit() and len(token) > 1 and "." not in token:
            # \frac12: the first digit is the argument, the rest stays for the next group
            self.tokens[self.position - 1 : self.position] = [token[0], token[1:]]
            return float(token[0])
        self.position -= 1
        return self.primary(depth + 1)

    def primary(self, depth: int) -> float:
        if depth > MAX_DEPTH:
            raise _NoValue
        token = self._take()
        if token[0].isdigit() or token[0] == ".":
            return float(token)
        if token in ("(", "{"):
            value = self.expression(depth + 1)
            self._take(")" if token == "(" else "}")
            return value
        if token == "\\frac":
            numerator = self.group(depth + 1)
            return numerator / self.group(depth + 1)
        if token == "\\sqrt":
            index = 2.0
            if self._peek() == "[":
                self._take()
                index = self.expression(depth + 1)
                self._take("]")
            radicand = self.group(depth + 1)
            if radicand < 0 or index == 0:
                raise _NoValue
            return radicand ** (1.0 / index)
        if token == "\\pi":
            return math.pi
        if token.startswith("\\") and token[1:] in self.functions:
            return self.functions[token[1:]](self.power(depth + 1))
        raise _NoValue
