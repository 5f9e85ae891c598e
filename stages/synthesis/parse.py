"""Strict extraction of the new question from the writer's reply.

The reply must contain exactly one line that starts with the ``Question:`` marker (markdown bold
around the marker is tolerated: ``**Question:**``). The question is the text after the marker, up
to the first ``Answer:`` marker (at a line start, or inline when the model ran the lines together)
or the end of the reply; it may span lines (options on their own lines). Anything else is refused with a reason code, never repaired by guessing:

- ``empty``: the reply, or the text after the marker, is blank;
- ``no_marker``: no line starts with ``Question:`` (e.g. the model answered instead of asking);
- ``multiple_questions``: two ``Question:`` markers, or more than one ``?`` before the options (two
  questions in one block have two answers, so neither is verifiable);
- ``truncated``: generation hit its token limit before the ``Answer:`` line, so the question itself
  may be cut off.

Text before the marker (a preamble) is ignored: the marker, not the position, says where the
question is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stages.synthesis.prompts import ANSWER_MARKER, QUESTION_MARKER

PARSE_REASONS: dict[str, str] = {
    "empty": "the reply (or the text after the Question: marker) is blank",
    "no_marker": "no line starts with the Question: marker",
    "multiple_questions": "more than one Question: marker, or more than one '?' before the options",
    "truncated": "the token limit was reached before the Answer: line; the question may be cut off",
}

MAX_ANSWER_CHARS = 200


def _marker_re(marker: str) -> re.Pattern[str]:
    word = re.escape(marker.rstrip(":"))
    # Line start, optional markdown decoration (**, #, -), the word, optional **, the colon, optional **.
    return re.compile(rf"^[ \t]*(?:[#>*-][ \t#*]*)?{word}[ \t]*(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?", re.I | re.M)


_QUESTION_RE = _marker_re(QUESTION_MARKER)
_ANSWER_RE = re.compile(
    rf"(?:\*\*)?\b{re.escape(ANSWER_MARKER.rstrip(':'))}[ \t]*(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?", re.I
)
_INLINE_QUESTION_RE = re.compile(rf"\b{re.escape(QUESTION_MARKER.rstrip(':'))}\s*:", re.I)
_OPTIONS_START_RE = re.compile(r"\(\s*[A-J]\s*\)|\bChoices\s*:|\bOptions\s*:|^\s*[A-J][.)]\s", re.M)
_SPECIAL_RE = re.compile(r"<\|[^|>]{1,40}\|>|<image>")
_WRAP_CHARS = " \t\n*_`\"'“”"


@dataclass(frozen=True)
class Parsed:
    """A question that passed parsing, and the answer the writer proposed (diagnostic only)."""

    question: str
    proposed_answer: str | None


@dataclass(frozen=True)
class ParseFailure:
    reason: str
    detail: str


def clean_question(text: str) -> str:
    """Drop chat special tokens and ``<image>`` placeholders, outer markdown/quotes, and trailing blanks.

    Inner line breaks are kept (options may be listed one per line); runs of spaces are collapsed.
    """
    text = _SPECIAL_RE.sub(" ", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip(_WRAP_CHARS)


def stem(question: str) -> str:
    """The question without its option listing (the part before "(A)", "Choices:" or "A. ...")."""
    match = _OPTIONS_START_RE.search(question)
    return question[: match.start()] if match else question


def parse_reply(text: str, finish_reason: str = "stop") -> Parsed | ParseFailure:
    """The one question in ``text``, or why there is none (see the module docstring for the rules)."""
    if not text or not text.strip():
        return ParseFailure("empty", "the reply is blank")
    markers = list(_QUESTION_RE.finditer(text))
    if not markers:
        return ParseFailure("no_marker", f"no line starts with {QUESTION_MARKER!r}: {_snippet(text)}")
    if len(markers) > 1:
        return ParseFailure("multiple_questions", f"{len(markers)} {QUESTION_MARKER!r} lines")
    start = markers[0].end()
    answer = _ANSWER_RE.search(text, start)
    block = text[start : answer.start()] if answer else text[start:]
    if answer is None and finish_reason == "length":
        return ParseFailure("truncated", f"token limit reached before {ANSWER_MARKER!r}: {_snippet(block)}")
    question = clean_question(block)
    if not question:
        return ParseFailure("empty", f"nothing after {QUESTION_MARKER!r}")
    if _INLINE_QUESTION_RE.search(question):
        return ParseFailure(
            "multiple_questions", f"a second {QUESTION_MARKER!r} inside: {_snippet(question)}"
        )
    marks = stem(question).count("?")
    if marks > 1:
        return ParseFailure(
            "multiple_questions", f"{marks} question marks before the options: {_snippet(question)}"
        )
    proposed = None
    if answer is not None:
        first_line = text[answer.end() :].strip().split("\n", 1)[0]
        proposed = clean_question(first_line)[:MAX_ANSWER_CHARS] or None
    return Parsed(question, proposed)


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")
