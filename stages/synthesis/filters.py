"""Filters on parsed candidate questions: each a small function returning a reason code or None.

Order matters only for which reason is recorded (the first that applies): cheap text checks
first, then the comparison with the original, then batch duplicates, then the (expensive)
answerability check, which runs only on what survived everything else.

Definitions:

- *garbled*: a control character (other than line break and tab), U+FFFD (bytes the tokenizer
  could not decode), or an unassigned / private-use code point.
- *question*: it contains ``?``, or its first word is an interrogative (what, which, how, is, ...)
  or a task verb (find, compute, count, ...): "Count the red circles." asks as clearly as a "?".
- *near-copy*: ``rapidfuzz.fuzz.ratio`` of the two normalised texts (case-folded, ``<image>`` and
  punctuation removed, whitespace collapsed) divided by 100 is at least ``copy_similarity``.
- *missing options*: the question refers to options ("(A)", "option B", "choices", "which of the
  following", "the options") but does not list at least (A) and (B) with option text ("(A) 3 (B) 4",
  or "A. 3" on its own line; "is it (A) or (B)?" lists nothing). A multiple-choice question without
  its options cannot be answered, and its answer letter would be unverifiable.
- *duplicate*: the same normalised text for the same image(s) as a candidate seen earlier
  (earlier = earlier shard, then earlier parent, strategy, candidate index): the first is kept.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from schemas.synthesize import FilterConfig
from schemas.vote import VoteConfig
from stages.vote import vote_group

FILTER_REASONS: dict[str, str] = {
    "too_short": "fewer characters or words than filters.min_chars / min_words",
    "too_long": "more characters or words than filters.max_chars / max_words",
    "garbled": "contains control characters or undecodable bytes (U+FFFD): broken generation",
    "not_question": "no '?' and does not open with an interrogative or a task verb",
    "copy": "the original question again, or a near-copy (similarity >= filters.copy_similarity)",
    "missing_options": "refers to options (A)/(B)/choices without listing them",
    "duplicate": "the same question (normalised) as an earlier candidate for the same image(s)",
    "unanswerable": "the model's own answers do not reach answerability.min_vote_ratio agreement",
}

INTERROGATIVE_OPENERS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "when",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "shall",
        "has",
        "have",
        "had",
        "may",
        "might",
        "must",
    ]
)
TASK_OPENERS = frozenset(
    [
        "find",
        "compute",
        "calculate",
        "determine",
        "count",
        "name",
        "identify",
        "give",
        "estimate",
        "evaluate",
        "solve",
        "state",
        "tell",
        "list",
        "say",
        "choose",
        "select",
    ]
)

_NON_WORD_RE = re.compile(r"[^\w\s]+")
_WORD_RE = re.compile(r"[A-Za-z]+")
_OPTION_REFERENCE_RE = re.compile(
    r"\(\s*[A-J]\s*\)|\b(?:options?|choices?)\b|\bwhich of the following\b|\banswer with (?:the|a) letter\b",
    re.I,
)
_INLINE_LABEL_RE = re.compile(r"\(\s*([A-J])\s*\)")
_GARBLED_CATEGORIES = frozenset(["Cc", "Cs", "Co", "Cn"])
_CONJUNCTIONS = frozenset(["or", "and", "nor", "or not"])
_LINE_LABEL_RE = re.compile(r"^\s*([A-J])[.):]\s+\S", re.M)


def normalise(text: str) -> str:
    """Case-folded words only: the form compared for copies and duplicates."""
    text = text.replace("<image>", " ").casefold()
    return " ".join(_NON_WORD_RE.sub(" ", text).split())


def length_reason(question: str, config: FilterConfig) -> tuple[str, str] | None:
    chars, words = len(question), len(question.split())
    if chars < config.min_chars or words < config.min_words:
        return (
            "too_short",
            f"{chars} chars, {words} words (min {config.min_chars} chars, {config.min_words} words)",
        )
    if chars > config.max_chars or words > config.max_words:
        return (
            "too_long",
            f"{chars} chars, {words} words (max {config.max_chars} chars, {config.max_words} words)",
        )
    return None


def garbled_reason(question: str) -> tuple[str, str] | None:
    """Broken decoding: control characters (other than line breaks and tabs), U+FFFD, unassigned or
    private-use code points. Such text is a sampling accident, not a question a person could read."""
    for char in question:
        if char in "\n\t":
            continue
        if char == "\ufffd" or unicodedata.category(char) in _GARBLED_CATEGORIES:
            return "garbled", f"character {char!r} (U+{ord(char):04X})"
    return None


def question_reason(question: str) -> tuple[str, str] | None:
    if "?" in question:
        return None
    first = _WORD_RE.search(question)
    opener = first.group().lower() if first else ""
    if opener in INTERROGATIVE_OPENERS or opener in TASK_OPENERS:
        return None
    return "not_question", f"no '?' and opens with {opener or question[:20]!r}"


def similarity(a: str, b: str) -> float:
    """Normalised similarity in [0, 1] of two texts (1.0: identical after normalisation)."""
    return fuzz.ratio(normalise(a), normalise(b)) / 100.0


def copy_reason(question: str, original: str, config: FilterConfig) -> tuple[str, str] | None:
    score = similarity(question, original)
    if score >= config.copy_similarity:
        return "copy", f"similarity {score:.2f} >= {config.copy_similarity} to the original"
    return None


def listed_options(question: str) -> list[str]:
    """Option labels listed with text, in order: "(A) 3 (B) 4" or one "A. 3" per line.

    An inline label counts only when text other than a conjunction follows it before the next
    label: "is it (A) or (B)?" refers to options without listing any.
    """
    labels = []
    marks = list(_INLINE_LABEL_RE.finditer(question))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(question)
        text = question[mark.end() : end].strip(" \t\n?.,;:!")
        if text and text.lower() not in _CONJUNCTIONS:
            labels.append(mark.group(1))
    if len(labels) < 2:
        labels = [m.group(1) for m in _LINE_LABEL_RE.finditer(question)]
    return labels


def options_reason(question: str) -> tuple[str, str] | None:
    if not _OPTION_REFERENCE_RE.search(question):
        return None
    labels = listed_options(question)
    if len(labels) >= 2 and labels[0] == "A" and "B" in labels:
        return None
    found = ", ".join(labels) or "none"
    return "missing_options", f"refers to options but lists {found} (needs at least (A) and (B) with text)"


def text_reason(question: str, original: str, config: FilterConfig) -> tuple[str, str] | None:
    """The first model-free reason to drop ``question`` (None: it passes)."""
    return (
        length_reason(question, config)
        or garbled_reason(question)
        or question_reason(question)
        or copy_reason(question, original, config)
        or options_reason(question)
    )


def image_key(images: Sequence[bytes]) -> str:
    """Identity of a row's image list (hash of each image's hash, in order)."""
    digest = hashlib.sha256()
    for data in images:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def duplicate_key(images: Sequence[bytes] | str, question: str) -> str:
    """Identity of a question on its image(s), for batch de-duplication (``images`` or their ``image_key``)."""
    key = images if isinstance(images, str) else image_key(images)
    return hashlib.sha256(f"{key}\x00{normalise(question)}".encode()).hexdigest()


class Deduplicator:
    """Keeps the first candidate per ``duplicate_key``; later ones are duplicates of it."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def reason(self, images: Sequence[bytes], question: str, candidate_id: str) -> tuple[str, str] | None:
        key = duplicate_key(images, question)
        first = self._first.setdefault(key, candidate_id)
        if first == candidate_id:
            return None
        return "duplicate", f"same question as {first}"


@dataclass(frozen=True)
class Answerability:
    keep: bool
    majority: str | None
    vote_share: float
    detail: str


def answerability(answers: Sequence[str | None], min_vote_ratio: float) -> Answerability:
    """Whether the model's own extracted answers to a question agree enough (majority vote).

    Uses the same vote as training (``stages.vote.vote_group``: equivalence classes, unparsable
    answers count in the denominator, ties refused), so "answerable" here means exactly "training
    would assign a pseudo-label".
    """
    # share_of all: a question the model answers once in four samples is not answerable
    result = vote_group(list(answers), VoteConfig(min_vote_ratio=min_vote_ratio, share_of="all"))
    detail = (
        f"vote share {result.vote_share:.2f} (min {min_vote_ratio}), {result.n_valid}/{len(answers)} "
        f"parsable answers"
    )
    if result.pseudo_label is None:
        return Answerability(False, None, result.vote_share, f"{result.skip_reason}: {detail}")
    return Answerability(True, result.pseudo_label, result.vote_share, detail)
