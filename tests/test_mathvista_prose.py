"""MathVista answers written in prose: each extraction rule, on invented responses, in both directions."""

from __future__ import annotations

import pytest

from stages.evaluation.scorers.mathvista import score
from stages.evaluation.types import EvalItem


def mc(choices: list[str], gold: str) -> EvalItem:
    meta = {"question_type": "multi_choice", "answer_type": "text", "choices": choices, "precision": None}
    return EvalItem("1", "q", [], gold, {}, meta)


def free(answer_type: str, gold: str, precision: int | None = None) -> EvalItem:
    meta = {"question_type": "free_form", "answer_type": answer_type, "choices": None, "precision": precision}
    return EvalItem("1", "q", [], gold, {}, meta)


TREND = mc(["increase", "decrease", "stay the same"], "decrease")
ANGLES = mc(["30°", "45°", "60°", "90°"], "60°")
YES_NO = mc(["Yes", "No"], "No")


@pytest.mark.parametrize(
    ("item", "response", "correct", "rule"),
    [
        # the option whose text is mentioned last
        (
            TREND,
            "Fewer fish means the birds starve, so the population will decrease over time.",
            True,
            "option_text",
        ),
        (
            TREND,
            "At first it may decrease, but with more food the population will increase.",
            False,
            "option_text",
        ),
        # the last explicit option mark, skipping the lines that list the choices
        (
            ANGLES,
            "Choices: (A) 30° (B) 45° (C) 60° (D) 90°\nThe angle is twice 30°, so the correct option is (C) 60°.",
            True,
            "letter",
        ),
        (ANGLES, "(A) 30°\n(B) 45°\nSince the triangle is right-angled, I pick option B", False, "letter"),
        (ANGLES, "所以答案是 （C）", True, "letter"),
        # a Yes/No question answered by a statement
        (YES_NO, "The red bar is not taller than the blue bar.", True, "yes_no"),
        (YES_NO, "The red bar is taller than the blue bar.", False, "yes_no"),
        # refusals take the official path (N/A, then nearest choice) instead of a guessed option
        (TREND, "The graph does not give enough information; it cannot be determined.", False, "refusal"),
        # the last number of a free-form answer
        (free("integer", "3"), "Each group has 3 dots", True, "last_number"),
        (free("integer", "3"), "There are 12 dots in 4 groups", False, "last_number"),
        (free("float", "1.5", 1), "The ratio is 3 to 2, that is 1.5.</s>", True, "last_number"),
        # a response that is only a list
        (free("list", "[0, 2, 1, 7]"), "[0, 2, 1, 7]", True, "list"),
        (free("list", "[0, 2, 1, 7]"), "[0, 2, 7, 1]", False, "list"),
    ],
)
def test_prose_rules(item, response, correct, rule):
    verdict = score(item, response)
    assert verdict.correct is correct
    assert verdict.note == f"prose_{rule}"


def test_end_of_sequence_tags_do_not_defeat_sentence_cutting():
    assert score(free("integer", "4"), "The answer is 4.</s>").correct
    assert score(free("integer", "4"), "The answer is 4.<|im_end|>").correct
    assert not score(free("integer", "4"), "The answer is 5.<|im_end|>").correct


def test_answer_phrase_keeps_only_the_option_inside_its_clause():
    # the phrase captures a clause that nearest-choice alone would map to an arbitrary option
    assert score(TREND, "The answer is that the population will decrease because fewer fish survive.").correct
    assert not score(
        TREND, "The answer is that the population will increase because more fish survive."
    ).correct
    assert score(ANGLES, "The answer is (C) since the angle doubles.").correct


def test_letter_with_closing_paren_follows_the_official_rule():
    # official: "B) text" is no letter; nearest-choice on the whole text decides
    assert score(ANGLES, "C) 60°").correct
    assert not score(ANGLES, "C) 45°").correct  # the text, not the letter, is what is compared


def test_boxed_and_phrase_answers_are_unchanged():
    assert score(ANGLES, r"so \boxed{C}").correct and score(ANGLES, r"so \boxed{C}").note is None
    assert score(free("integer", "3"), "Final answer: 3").correct
    assert score(free("integer", "3"), "nothing here").note == "no_answer"


def test_fidelity_tool_on_invented_files_in_both_formats(tmp_path, capsys):
    import json

    from benchmarks.fidelity import main

    vista = tmp_path / "vista" / "results" / "model-x"
    vista.mkdir(parents=True)
    base = {"question": "q", "question_type": "multi_choice", "answer_type": "text", "precision": None}
    records = {
        "1": {
            **base,
            "pid": "1",
            "choices": ["increase", "decrease"],
            "answer": "decrease",
            "response": "so it will decrease",
            "true_false": True,
        },  # agree (prose rule)
        "2": {
            **base,
            "pid": "2",
            "choices": ["increase", "decrease"],
            "answer": "decrease",
            "response": "so it will increase",
            "true_false": True,
        },  # disagree: official says right
        "3": {
            "pid": "3",
            "question": "q",
            "question_type": "free_form",
            "answer_type": "integer",
            "precision": None,
            "choices": None,
            "answer": "3",
            "response": r"\boxed{3}",
            "true_false": False,
        },
    }
    (vista / "output_model_x.json").write_text(json.dumps(records), encoding="utf-8")
    main([str(tmp_path / "vista"), "--benchmark", "mathvista"])
    out = capsys.readouterr().out
    assert "| output_model_x.json | 3 | 0.3333 | 0 |" in out
    assert "| prose_option_text | ours wrong, official right | 1 |" in out
    assert "| boxed/phrase | ours right, official wrong | 1 |" in out

    mathv = tmp_path / "mathv" / "outputs"
    mathv.mkdir(parents=True)
    rows = [
        {
            "id": "1",
            "question": "q",
            "options": [],
            "answer": "7/32",
            "response": r"\boxed{\frac{7}{32}}",
            "correct": True,
        },
        {
            "id": "2",
            "question": "q",
            "options": ["1", "2", "3", "4", "5"],
            "answer": "B",
            "response": r"\boxed{C}",
            "correct": False,
        },
    ]
    (mathv / "model.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    main([str(tmp_path / "mathv"), "--benchmark", "mathvision"])
    assert "| **all** | 2 | **1.0000** | 0 |" in capsys.readouterr().out
