r"""MathVista scoring: rule-based extraction + the official normalisation and exact match.

Official procedure (lupantech/MathVista ``evaluation/extract_answer.py`` + ``calculate_score.py``):
an LLM (GPT-4) extracts the answer from the response (after a few quick rules: an exact choice
text, a plain integer/float response), then ``normalize_extracted_answer`` maps it to the answer
type and the prediction must equal the gold string exactly:

- multi_choice: "(X)" -> letter X; a letter -> that choice's text; otherwise the choice nearest
  by Levenshtein distance (first on ties);
- integer: ``str(int(float(x)))`` (truncation, as official);
- float: ``str(round(float(x), precision))``;
- list: ``str(x)``.

Here the LLM extraction is replaced by rules: the official quick rules first, then the shared
``extract_answer`` (last ``\boxed{}``, answer tags/phrases, final choice line); a choice letter in
any common shape (``B``, ``B.``, ``option B``, ``B. 145°``) counts as the letter; numbers are read
through ``answer_number`` (``1,000``, ``\frac{1}{2}``, ``12 cm``); a list written without brackets
(``2014, 2016``) is bracketed.

Published models mostly answer in prose, with no box and no "the answer is". For those,
``prose_extract`` stands in for the LLM with rules, in this order (the name of the rule that
fired is the verdict's ``note`` as ``prose_<rule>``, so disagreements can be counted by cause):

- ``eos``: a trailing end-of-sequence tag (``</s>``, ``<|im_end|>``) is dropped first, so that
  sentence cutting sees the last sentence;
- multiple choice: ``letter`` the last explicit option mark (``(C)``, ``（C）``, ``option C``,
  ``choice (C)``, ``答案是 (B)``), skipping lines that merely list the choices; ``yes_no`` a Yes/No
  question answered by a statement (a negation means No, else Yes), after ``refusal`` ("cannot
  be determined", "not enough information", "cannot be answered"), which takes the official
  path: the extraction is the stock phrase the official LLM writes ("Cannot be determined",
  "Cannot be answered") or ``N/A``, and nearest-choice maps it; ``option_text`` the option whose
  text is mentioned last (longest on ties; a number never inside a longer one, a word singular or
  plural);
- free form: ``list`` a response that is only a list; ``last_number`` the number the last
  sentence with a number concludes with (``concluding_number``: after its last ``=``, else its
  first number the question did not state, number words up to twenty included).

An "answer is" phrase that captured a clause keeps only the option mark or option text inside it
(``clause``), and ``"B) text"`` falls through to nearest-choice on the whole text, as the
official rule does. A response with nothing extractable is wrong (``no_answer``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from mmupt.answers import answer_number, extract_answer
from mmupt.answers.canonical import normalise_unicode
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, choice_letter, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

BREAKDOWNS: tuple[tuple[str, ...], ...] = tuple(
    (key,)
    for key in (
        "question_type",
        "answer_type",
        "language",
        "source",
        "category",
        "task",
        "context",
        "grade",
        "skills",
    )
)
MAX_NUMBER_CHARS = 12
"""Longer number extractions are read as clauses: their first number is the answer."""
MAX_MATCH_CHARS = 500
"""Extractions are cut to this length before edit distances (bounds the O(n*m) work)."""

_PAREN_LETTER_RE = re.compile(r"\(([a-zA-Z])\)")
_LIST_ITEM_RE = re.compile(r"^-?\d+(?:\.\d+)?$")
_EOS_RE = re.compile(r"(?:\s*(?:</s>|<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<eos>|<end_of_turn>))+\s*$")
_OPTION_MARK_RE = re.compile(
    r"[(（]\s*([A-Z])\s*[)）]"  # (C), full-width （C）
    r"|\b(?:option|choice)\s*[:：]?\s*[(（]?([A-Z])\b"  # option C, choice (C)
    r"|答案(?:是|为|：|:)\s*[(（]?\s*([A-Z])\b"  # 答案是 (B)
)
_LETTER_WITH_PAREN_TEXT_RE = re.compile(r"^[A-Z]\)\s+\S")
# "The answer to the question is (C) ...", "the correct option letter for ... is C."
_STATED_LETTER_RE = re.compile(
    r"\b(?:answer|option|choice)\b[^.\n]{0,80}?\b(?:is|:)\s*[(（]?\s*([A-Z])\s*[)）]?(?=[\s.,;:]|$)"
)
# "C. The measure of angle 2 ...": a response that opens with its option letter
_LEADING_LETTER_RE = re.compile(r"^\s*([A-Z])\s*[.:：]\s")
_REFUSAL_RE = re.compile(
    r"can ?not be (?:determined|answered|provided)|can ?not (?:determine|answer|tell)|"
    r"(?:not|n't) (?:have |provide |contain |give )?(?:enough|sufficient) (?:information|context|data|details)|"
    r"insufficient (?:information|context|data|details)|information (?:provided |given )?is insufficient|"
    r"(?:impossible|not possible|unable|not able) to (?:determine|tell|say|answer|view|see)|question is not valid|"
    r"(?:can ?not|can't) (?:see|view) (?:the |any )?(?:image|picture|figure)",
    re.IGNORECASE,
)
_NEGATION_RE = re.compile(
    r"\b(?:no|not|never|none|nothing|neither|nor|cannot)\b|n't\b|\bis ?n ?ot\b", re.IGNORECASE
)
_YES_NO_WORD_RE = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_NUMBER_IN_TEXT_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|\.\d)|(?<![\w.])-?\.\d+(?![\w]|\.\d)"
)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "  # noqa: SIM905
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?。])\s+|\n+")
# a clause that restates the sentence's result: "3 to 2, that is 1.5", "4 groups of 3, so 12"
_RESTATEMENT_RE = re.compile(
    r"[,;:]\s*(?:that is|i\.e\.|so|thus|therefore|hence|which is|giving|making)\b|\s+so\s+", re.IGNORECASE
)
_LIST_ONLY_RE = re.compile(r"^\[\s*-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)*\s*\]\.?$")
REFUSAL = "N/A"
# The official LLM extraction writes these stock phrases as the answer when a response uses them
# (and "N/A" for other refusals); nearest-choice then maps the phrase, not "N/A", to an option.
_STOCK_REFUSALS = {"cannot be determined": "Cannot be determined", "cannot be answered": "Cannot be answered"}
_STOCK_REFUSAL_RE = re.compile(r"can ?not be (determined|answered)", re.IGNORECASE)


def quick_extract(response: str, item: EvalItem) -> str | None:
    """The official rules that run before the LLM: exact choice text, plain int/float response."""
    text = response.strip()
    if item.meta["question_type"] == "multi_choice" and text in (item.meta["choices"] or []):
        return text
    if item.meta["answer_type"] == "integer":
        try:
            return str(int(text))
        except ValueError:
            pass
    if item.meta["answer_type"] == "float":
        try:
            return str(float(text))
        except ValueError:
            pass
    return None


def number(text: str) -> float | None:
    """A finite float from a plain number or anything ``answer_number`` reads (``1,000``, ``1/2``)."""
    try:
        value = float(text)
    except ValueError:
        exact = answer_number(text)
        value = float(exact) if exact is not None else math.nan
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _as_list(text: str) -> str:
    inner = text.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    parts = [p.strip() for p in inner.split(",")]
    if len(parts) > 1 and all(_LIST_ITEM_RE.match(p) for p in parts):
        return "[" + ", ".join(parts) + "]"
    return text.strip()


def _clause_number(extraction: str) -> float | None:
    """The extraction's number; for a clause ("1982 with a total of $931,441"), its first number."""
    value = number(extraction)
    if value is None and len(extraction) > MAX_NUMBER_CHARS:
        found = _digits_in(extraction)
        value = number(found[0]) if found else None
    return value


def nearest_choice(text: str, choices: list[str]) -> str:
    distances = [Levenshtein.distance(text[:MAX_MATCH_CHARS], choice) for choice in choices]
    return choices[distances.index(min(distances))]


def normalize(extraction: str, item: EvalItem) -> str | None:
    """The official ``normalize_extracted_answer`` (plus the letter shapes an LLM would have cleaned)."""
    meta = item.meta
    if meta["question_type"] == "multi_choice":
        choices: list[str] = meta["choices"]
        text = extraction.strip()
        if _LETTER_WITH_PAREN_TEXT_RE.match(text):
            return nearest_choice(text, choices)  # official: "B) text" is no letter
        paren = _PAREN_LETTER_RE.findall(text)
        if paren:  # official: "(x)" anywhere -> "X", which is then a letter or matched by distance
            text = paren[0].upper()
        letter = choice_letter(text, len(choices))
        if letter is not None:
            return choices[ord(letter) - ord("A")]
        if text in choices:
            return text
        clause = _option_in_clause(text, choices)
        return clause if clause is not None else nearest_choice(text, choices)
    if meta["answer_type"] == "integer":
        value = _clause_number(extraction)
        return str(int(value)) if value is not None else None
    if meta["answer_type"] == "float":
        value = _clause_number(extraction)
        return str(round(value, meta["precision"])) if value is not None else None
    if meta["answer_type"] == "list":
        return _as_list(extraction)
    return extraction.strip()


def _option_in_clause(text: str, choices: list[str]) -> str | None:
    """An option mark or option text inside a longer extraction ("the answer is (C) since ...")."""
    if len(text) <= max((len(c) for c in choices), default=0) + 3:
        return None
    mark = _last_option_mark(text, choices)
    if mark is not None:
        return choices[ord(mark) - ord("A")]
    return _last_option_text(text, choices)


def _is_choice_listing(line: str, choices: list[str]) -> bool:
    """A line that only lists options: two or more marks, or a line that is one mark and its option text."""
    marks = list(_OPTION_MARK_RE.finditer(line))
    if len(marks) >= 2:
        return True
    if len(marks) == 1 and not line[: marks[0].start()].strip():
        rest = line[marks[0].end() :].strip().rstrip(".").strip()
        return rest in choices
    return False


def _stated_letter(text: str, choices: list[str]) -> str | None:
    """A letter the response states as its answer (the last such statement), or opens with.

    Before the last option mark: an explanation that goes through the other options after
    "The answer is (C) ..." mentions them last.
    """
    for match in reversed(list(_STATED_LETTER_RE.finditer(text))):
        if _is_option(match.group(1), choices):
            return match.group(1)
    leading = _LEADING_LETTER_RE.match(text)
    return leading.group(1) if leading and _is_option(leading.group(1), choices) else None


def _is_option(letter: str, choices: list[str]) -> bool:
    return ord(letter) - ord("A") < len(choices)


def _last_option_mark(text: str, choices: list[str]) -> str | None:
    lines = text.splitlines()
    for line in reversed(lines):
        if len(lines) > 1 and _is_choice_listing(line, choices):
            continue
        for match in reversed(list(_OPTION_MARK_RE.finditer(line))):
            letter = next(group for group in match.groups() if group)
            if _is_option(letter, choices):
                return letter
    return None


def _option_text_pattern(needle: str) -> str:
    """A choice's text as a whole word or phrase: a number is not part of a longer number ("2" in
    "2.2"), and a word may be singular or plural ("the Frog" names the option "Frogs")."""
    head = r"(?<![\w.])" if needle[0].isdigit() else r"(?<!\w)" if needle[0].isalnum() else ""
    if needle[-1].isdigit():
        return head + re.escape(needle) + r"(?![\w]|[.,]\d)"
    if needle[-1].isalpha() and len(needle) > 3:
        stem = needle[:-1] if needle.endswith("s") and not needle.endswith("ss") else needle
        return head + re.escape(stem) + r"(?:e?s)?(?!\w)"
    return head + re.escape(needle) + (r"(?!\w)" if needle[-1].isalnum() else "")


def _last_option_text(text: str, choices: list[str]) -> str | None:
    """The option whose text is mentioned last (as a whole word or phrase); longest on ties."""
    lowered = text.lower()
    best: tuple[int, int] | None = None
    found = None
    for choice in choices:
        needle = choice.strip().lower()
        if not needle:
            continue
        pattern = _option_text_pattern(needle)
        matches = list(re.finditer(pattern, lowered))
        if not matches:
            continue
        key = (matches[-1].start(), len(needle))
        if best is None or key > best:
            best, found = key, choice
    return found


def _yes_no(text: str, choices: list[str]) -> str | None:
    lowered = [c.strip().lower() for c in choices]
    if sorted(lowered) != ["no", "yes"]:
        return None
    said = _YES_NO_WORD_RE.match(text)
    verdict = said.group(1).lower() if said else ("no" if _NEGATION_RE.search(text) else "yes")
    return choices[lowered.index(verdict)]


def prose_extract(text: str, item: EvalItem) -> tuple[str | None, str]:
    """(extraction, rule) for a response with no box and no answer phrase; see the module docstring."""
    meta = item.meta
    if meta["question_type"] == "multi_choice":
        choices: list[str] = meta["choices"]
        mark = _stated_letter(text, choices) or _last_option_mark(text, choices)
        if mark is not None:
            return mark, "letter"
        if _REFUSAL_RE.search(text):  # before yes_no: "cannot be determined" is no "No"
            return refusal_extraction(text), "refusal"
        yes_no = _yes_no(text, choices)
        if yes_no is not None:
            return yes_no, "yes_no"
        option = _last_option_text(text, choices)
        return (option, "option_text") if option is not None else (None, NO_ANSWER)
    stripped = text.strip()
    if meta["answer_type"] == "list" and _LIST_ONLY_RE.match(stripped):
        return stripped.rstrip("."), "list"
    if _REFUSAL_RE.search(text):  # official: N/A, which no number type accepts
        return None, "refusal"
    if meta["answer_type"] in ("integer", "float"):
        found = concluding_number(text, meta.get("question_numbers") or [])
        if found is not None:
            return found, "last_number"
    return None, NO_ANSWER


def refusal_extraction(text: str) -> str:
    """What the official extraction makes of a refusal; ``normalize`` then takes the nearest choice.

    The response itself if that is one sentence, perhaps followed by a "Please provide ..."
    request (the official LLM copies those); else its stock phrase if it uses one (the last);
    else ``N/A``.
    """
    sentences = [part for part in _SENTENCE_END_RE.split(text.strip()) if part]
    if len(sentences) == 1 or (len(sentences) == 2 and sentences[1].lower().startswith("please")):
        return text.strip()
    stock = _STOCK_REFUSAL_RE.findall(text)
    if stock:
        return _STOCK_REFUSALS[f"cannot be {stock[-1].lower()}"]
    return REFUSAL


def _digits_in(text: str) -> list[str]:
    """The numbers written in digits, thousands separators dropped (``1,000`` -> ``1000``)."""
    return [n.replace(",", "") for n in _NUMBER_IN_TEXT_RE.findall(text)]


def _words_in(text: str) -> list[str]:
    """The number words up to twenty, as digits."""
    return [_NUMBER_WORDS[w.lower()] for w in _NUMBER_WORD_RE.findall(text)]


def question_numbers(question: str) -> list[str]:
    """The numbers a question states (digits as written, number words as digits)."""
    return _digits_in(question) + _words_in(question)


def concluding_number(text: str, asked: Sequence[str]) -> str | None:
    """The number a prose answer concludes with: in its last sentence that holds a number.

    There (in its last restating clause, "..., that is 1.5", when that holds a number): the number
    after the last ``=`` (its last one); else the first number the question did not state
    (digits before number words), so "There are 3 objects preferred by more than 7 people" to
    "How many ... more than 7 people?" gives 3, and "recorded in 2016, with 94%" gives 2016. A
    sentence with only the question's numbers is passed over; with none left, the last number.
    """
    asked_set = set(asked)
    for sentence in reversed(_SENTENCE_END_RE.split(text)):
        restated = _RESTATEMENT_RE.split(sentence)[-1]
        if _NUMBER_IN_TEXT_RE.search(restated):
            sentence = restated
        digits, words = _digits_in(sentence), _words_in(sentence)
        if not digits and not words:
            continue
        if "=" in sentence:
            after = _digits_in(sentence.rsplit("=", 1)[1])
            if after:
                return after[-1]
        fresh = [n for n in digits if n not in asked_set] or [n for n in words if n not in asked_set]
        if fresh:
            return fresh[0]
    digits = _digits_in(text)  # every number was one the question stated
    return digits[-1] if digits else None


def extract(text: str, item: EvalItem) -> tuple[str | None, str | None]:
    """(extraction, rule): the official quick rules, the shared extractor, then ``prose_extract``."""
    text = _EOS_RE.sub("", text)
    found = quick_extract(text, item)
    if found:
        return found, None
    found = extract_answer(text)
    if found:
        return found, None
    return prose_extract(text, item)


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    extraction, rule = extract(normalise_unicode(tail(response)), item)
    if not extraction:
        return Verdict(None, False, f"prose_{rule}" if rule and rule != NO_ANSWER else NO_ANSWER)
    prediction = normalize(extraction, item)
    if prediction is None:
        return Verdict(extraction, False, "unparsable_" + item.meta["answer_type"])
    return Verdict(prediction, prediction == item.gold, f"prose_{rule}" if rule else None)


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    return accuracy_rows(items, verdicts, BREAKDOWNS)
