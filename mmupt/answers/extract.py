r"""Final-answer extraction: the answer a response states, found in linear time on bounded input.

Voting runs this on every rollout, so it is cheap string work with no backtracking-prone regexes.
"""

from __future__ import annotations

import re

MAX_RESPONSE_CHARS = 32_768
"""Only the tail of a longer response is searched: the final answer is at the end, and this
bounds the work a runaway generation can cause."""

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


def balanced_end(text: str, start: int) -> int | None:
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
        end = balanced_end(text, match.end())
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
