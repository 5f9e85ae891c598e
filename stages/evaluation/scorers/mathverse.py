r"""MathVerse scoring: rule-based stand-in for the official two-step LLM procedure.

Official procedure (ZrrSkywalker/MathVerse ``evaluation/``): GPT-4 extracts the answer
(``extract_answer_s1.py``), then GPT-4 judges it against the gold given the question
(``score_answer_s2.py``, "quick match" = exact string equality); accuracy is reported per
``problem_version`` and overall, plus per subject / subfield.

Here: the shared ``extract_answer``; multiple-choice is right when the extracted letter(s) are
the gold letter(s) (a few golds are written "(C)", "C\\nD" or as the option text, normalised at
load time), or when the extracted text is equivalent to the gold option's text (parsed from the
question's "Choices:" block, absent in Vision Only); free-form is right when
``answers_equivalent(extracted, gold)`` (numbers exact, units and degree signs dropped, symbolic
check for formulas). The optional LLM judge (config ``judge``) re-checks what this marks wrong.

Overall accuracy is over the five vision versions (the paper's "All"); Text Only is reported
apart, and is the overall only when no vision version was evaluated (stats say so).
"""

from __future__ import annotations

from collections.abc import Sequence

from mmupt.answers import answers_equivalent, extract_answer
from stages.evaluation.loaders.mathverse import TEXT_ONLY, VISION_VERSIONS, letter_set
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, choice_letter, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict

BREAKDOWNS: tuple[tuple[str, ...], ...] = (("question_type",), ("subject",), ("subject", "subfield"))


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    extracted = extract_answer(tail(response))
    if extracted is None:
        return Verdict(None, False, NO_ANSWER)
    gold_letters: list[str] | None = item.meta.get("gold_letters")
    if item.meta["question_type"] != "multi-choice" or not gold_letters:
        return Verdict(extracted, answers_equivalent(extracted, item.gold))
    choices: dict[str, str] = item.meta.get("choices") or {}
    letter = choice_letter(extracted, len(choices) or None)
    letters = [letter] if letter else letter_set(extracted)
    if letters:
        return Verdict(",".join(letters), letters == gold_letters)
    gold_text = choices.get(gold_letters[0]) if len(gold_letters) == 1 else None
    return Verdict(extracted, bool(gold_text) and answers_equivalent(extracted, gold_text))


def overall_scope(items: Sequence[EvalItem]) -> str:
    """Which items the overall accuracy is computed on: "vision" (the five versions) or "text_only"."""
    return "vision" if any(i.subset["problem_version"] in VISION_VERSIONS for i in items) else "text_only"


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    pairs = list(zip(items, verdicts, strict=True))
    if overall_scope(items) == "vision":
        pairs = [(i, v) for i, v in pairs if i.subset["problem_version"] != TEXT_ONLY]
    scoped_items = [i for i, _ in pairs]
    scoped_verdicts = [v for _, v in pairs]
    rows = accuracy_rows(scoped_items, scoped_verdicts, BREAKDOWNS)
    rows += accuracy_rows(items, verdicts, [("problem_version",)], include_all=False)
    return rows
