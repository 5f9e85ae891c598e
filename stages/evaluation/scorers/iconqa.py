"""IconQA scoring: accuracy per sub-task (choose_txt, choose_img, fill_in_blank).

Multiple-choice sub-tasks are right when the extracted option letter is the gold letter (for
choose_txt, an extracted text equal to the gold option's text, ignoring case and spaces, also
counts); fill_in_blank uses ``answers_equivalent``. The official code scores the predicted
option index / value the same way (exact match per sub-task).
"""

from __future__ import annotations

from collections.abc import Sequence

from mmupt.answers import answers_equivalent, extract_answer
from stages.evaluation.scorers.common import EMPTY, NO_ANSWER, accuracy_rows, choice_letter, is_empty, tail
from stages.evaluation.types import EvalItem, MetricRow, Verdict


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def score(item: EvalItem, response: str) -> Verdict:
    if is_empty(response):
        return EMPTY
    extracted = extract_answer(tail(response))
    if extracted is None:
        return Verdict(None, False, NO_ANSWER)
    if item.meta["ques_type"] == "fill_in_blank":
        return Verdict(extracted, answers_equivalent(extracted, item.gold))
    choices: list[str] = item.meta["choices"]
    letter = choice_letter(extracted, len(choices))
    if letter is None and item.meta["ques_type"] == "choose_txt":
        texts = [_norm(c) for c in choices]
        if _norm(extracted) in texts:
            letter = chr(ord("A") + texts.index(_norm(extracted)))
    return Verdict(letter or extracted, letter == item.gold)


def aggregate(items: Sequence[EvalItem], verdicts: Sequence[Verdict]) -> list[MetricRow]:
    return accuracy_rows(items, verdicts, [("ques_type",), ("grade",)])
