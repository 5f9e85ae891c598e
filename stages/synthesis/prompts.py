"""The question-writing prompts (our own wording), versioned next to the parser that reads the replies.

Why a fixed reply form ("Question: ..." then "Answer: ..."): the parser (``parse.py``) accepts only
text after an explicit marker, so reasoning, apologies or a restated original never leak into the
training set as a "question". The answer line is requested because committing to an answer makes
the writer aim for a question with one checkable answer; it is kept as a diagnostic
(``metadata.proposed_answer``) and never used as a label.

Bump ``PROMPT_VERSION`` whenever wording or markers change: it is stored on every synthetic row and
is part of every shard's cache key.
"""

from __future__ import annotations

from typing import Any

PROMPT_VERSION = "synth-v1"
QUESTION_MARKER = "Question:"
ANSWER_MARKER = "Answer:"

_RULES = (
    "The new question must be answerable by looking at the {image_word} alone and have exactly one short, "
    "checkable answer: a number, a word, or an option letter. If you make it multiple choice, write out "
    "every option as (A) ..., (B) ... inside the question."
)
_REPLY_FORM = (
    "Reply in exactly this form and write nothing else:\n"
    f"{QUESTION_MARKER} <the new question>\n"
    f"{ANSWER_MARKER} <its answer>"
)


def _image_word(n_images: int) -> str:
    return "image" if n_images == 1 else "images"


def _content(n_images: int, text: str) -> list[dict[str, Any]]:
    """Images first, then the text: the layout the reasoning prompt uses, so the model sees the same."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": text})
    return content


def in_context_messages(problem: str, answer: str, n_images: int) -> list[dict[str, Any]]:
    """Image(s) + an existing question and its answer -> ask for a different question on the same image(s)."""
    word = _image_word(n_images)
    original = problem.replace("<image>", "").strip()
    text = (
        f"Here is a question about the {word}, with its answer.\n"
        f"{QUESTION_MARKER} {original}\n"
        f"{ANSWER_MARKER} {answer.strip()}\n\n"
        f"Write one new question about the same {word} that asks for something different from the "
        f"question above. {_RULES.format(image_word=word)}\n\n{_REPLY_FORM}"
    )
    return [{"role": "user", "content": _content(n_images, text)}]


def direct_messages(n_images: int) -> list[dict[str, Any]]:
    """Image(s) only -> ask for a question about them."""
    word = _image_word(n_images)
    text = (
        f"Write one question about the {word} that tests careful looking or a small calculation. "
        f"{_RULES.format(image_word=word)}\n\n{_REPLY_FORM}"
    )
    return [{"role": "user", "content": _content(n_images, text)}]


def reply_text(question: str, answer: str) -> str:
    """A reply in the form the parser reads: what first SFT teaches the embedded model to write."""
    return f"{QUESTION_MARKER} {question.replace('<image>', '').strip()}\n{ANSWER_MARKER} {answer.strip()}"
