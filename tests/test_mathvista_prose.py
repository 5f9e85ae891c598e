"""MathVista answers written in prose: each extraction rule, on invented responses, in both directions."""

from __future__ import annotations

import pytest

from stages.evaluation.scorers.mathvista import question_numbers, score
from stages.evaluation.types import EvalItem


def mc(choices: list[str], gold: str) -> EvalItem:
    meta = {"question_type": "multi_choice", "answer_type": "text", "choices": choices, "precision": None}
    return EvalItem("1", "q", [], gold, {}, meta)


def free(answer_type: str, gold: str, precision: int | None = None, question: str = "q") -> EvalItem:
    meta = {
        "question_type": "free_form",
        "answer_type": answer_type,
        "choices": None,
        "precision": precision,
        "question_numbers": question_numbers(question),
    }
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
        # ... also on a Yes/No question, where a negation would otherwise read as "No"
        (
            YES_NO,
            "The bars have no labels. I do not have enough context to say.",
            True,
            "refusal",
        ),  # N/A -> "No"
        (
            mc(["yes", "no"], "no"),
            "The bars have no labels. I do not have enough context to say.",
            False,
            "refusal",
        ),
        # a one-sentence refusal is copied whole by the official extraction, then mapped by distance
        (mc(["R1", "R2"], "R2"), "I cannot tell which region is larger.", False, "refusal"),
        (mc(["R1", "R2"], "R1"), "I cannot tell which region is larger.", True, "refusal"),
        # a stated answer beats the options an explanation goes through afterwards
        (
            ANGLES,
            "The answer to the question is (C) 60°.\n(A) 30° is half of it.\n(B) 45° is too small.",
            True,
            "letter",
        ),
        (ANGLES, "The correct option letter for the angle is B.", False, "letter"),
        (ANGLES, "C. The angle is twice the given one.", True, "letter"),
        # the official extraction's stock phrase, not N/A, is what nearest-choice maps
        (mc(["Yes", "No"], "Yes"), "Thus the answer cannot be determined from the figure.", True, "refusal"),
        (YES_NO, "Thus the answer cannot be determined from the figure.", False, "refusal"),
        # option text: a singular names a plural option; a number is never inside a longer one
        (mc(["Rabbit", "Deer", "Frogs"], "Frogs"), "The Frog would lack food first.", True, "option_text"),
        (mc(["Rabbit", "Deer", "Frogs"], "Frogs"), "The Rabbit would lack food first.", False, "option_text"),
        (mc(["1", "2", "2.5"], "2"), "The chord AB measures 2.5 units.", False, "option_text"),
        (mc(["1", "2", "2.5"], "2"), "The chord AB measures 2 units.", True, "option_text"),
        # the last number of a free-form answer
        (free("integer", "3"), "Each group has 3 dots", True, "last_number"),
        (free("integer", "3"), "There are 12 dots in 4 groups", False, "last_number"),
        (free("float", "1.5", 1), "The ratio is 3 to 2, that is 1.5.</s>", True, "last_number"),
        # the concluding sentence's first number the question did not state, number words included
        (
            free("integer", "4", question="How many bars are above 7?"),
            "There are 4 bars above 7.",
            True,
            "last_number",
        ),
        (
            free("integer", "4", question="How many bars are above 7?"),
            "There are 5 bars above 7.",
            False,
            "last_number",
        ),
        (
            free("integer", "2", question="How many balls are left?"),
            "After that, two balls are left.",
            True,
            "last_number",
        ),
        (
            free("integer", "2018", question="Which year was highest?"),
            "It peaked in 2018, at 61%.",
            True,
            "last_number",
        ),
        (
            free("integer", "2018", question="Which year was highest?"),
            "It peaked in 2017, at 61%.",
            False,
            "last_number",
        ),
        # a free-form refusal has no answer (official: N/A), even where it names a number
        (
            free("integer", "2", question="What is the age gap between these two people?"),
            "I am unable to see the image. Please tell me the ages of the two people.",
            False,
            "refusal",
        ),
        # after an equation, its result (a number glued to a symbol is no number: "2.00R")
        (free("float", "0.25", 2), "At $r=2.00R$ the field is E = 9/36 = 0.25 N/C.", True, "last_number"),
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


def test_an_answer_phrase_that_captured_a_clause_gives_its_first_number():
    year = free("integer", "1982", question="Which year has more income?")
    assert score(year, "So the answer is 1982 with a total income of $931,441.").correct
    assert not score(year, "So the answer is 1981 with a total income of $931,441.").correct
    assert score(free("integer", "12"), "The answer is 12").correct  # a plain number is unchanged


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

    # the published layout: no problem fields in the outputs, joined by id with the dataset's file
    published = tmp_path / "published" / "outputs"
    published.mkdir(parents=True)
    outputs = [
        {
            "id": "1",
            "model": "m",
            "response": r"so \boxed{\frac{7}{32}}",
            "model_answer": "7/32",
            "correct": True,
        },
        {"id": "2", "model": "m", "response": r"\boxed{C}", "model_answer": "C", "correct": True},
        {"id": "9", "model": "m", "response": r"\boxed{1}", "model_answer": "1", "correct": True},
    ]
    (published / "model.jsonl").write_text("".join(json.dumps(r) + "\n" for r in outputs), encoding="utf-8")
    problems = tmp_path / "test.jsonl"
    problems.write_text(
        "".join(json.dumps({k: r[k] for k in ("id", "question", "options", "answer")}) + "\n" for r in rows),
        encoding="utf-8",
    )
    main([str(tmp_path / "published"), "--benchmark", "mathvision", "--problems", str(problems)])
    out = capsys.readouterr().out
    assert "| model.jsonl | 2 | 0.5000 | 1 |" in out  # id 9 is not in the dataset file: skipped
    assert "| boxed/phrase | ours wrong, official right | 1 |" in out
