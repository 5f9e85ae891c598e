"""Answer extraction, canonical forms and equivalence (mmupt/answers/)."""

from __future__ import annotations

import doctest
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import mmupt.answers as answers
from mmupt.answers import (
    answers_equivalent,
    canonical,
    canonical_answer,
    equivalence,
    equivalence_key,
    extract,
    extract_answer,
    looks_symbolic,
    needs_symbolic_check,
    symbolic,
)


def test_doctests_pass():
    results = [doctest.testmod(module) for module in (extract, canonical, equivalence, symbolic)]
    assert sum(result.attempted for result in results) > 5
    assert sum(result.failed for result in results) == 0


# ---------------------------------------------------------------------------- extraction
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (r"so \boxed{5}.", "5"),
        (r"\boxed{\frac{1}{\sqrt{2}}} done", r"\frac{1}{\sqrt{2}}"),
        (r"first \boxed{1} then \boxed{2} finally \boxed{3}", "3"),
        (r"\boxed {x+1}", "x+1"),
        (r"\fbox{7}", "7"),
        (r"\boxed{\{1,2\}}", r"\{1,2\}"),  # escaped braces do not count for balance
        (r"\boxed{\boxed{7}}", "7"),  # innermost = last opened
        (r"\boxed{4} then a truncated \boxed{5", "4"),  # last *balanced* box
        (r"x\\{y} \boxed{9}", "9"),  # \\ is a line break, not an escaped brace
        (r"\boxedfoo{3}", None),  # not the \boxed command
        (r"\boxed{}", None),
        ("<think>hmm</think><answer> 42 </answer>", "42"),
        ("<answer>The answer is 3.</answer>", "3"),
        ("reasoning...\n<answer>17", "17"),  # unterminated tag at the very end
        ("So the final answer is 12. Thanks!", "12"),
        ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("**Final Answer:** B", "B"),
        ("The answer is 3.\nActually, the answer is 4.", "4"),  # last phrase wins
        ("Looking at the options...\n(B)", "B"),
        ("Looking at the options...\n**C.**", "C"),
        ("the variable is\ne", None),  # a lowercase final letter is not a choice
        ("no answer stated here", None),
        ("", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_box_wins_over_fallbacks():
    assert extract_answer(r"The answer is 3. <answer>4</answer> \boxed{5}") == "5"
    assert extract_answer("The answer is 3. <answer>4</answer>") == "4"


def test_only_the_tail_of_a_huge_response_is_searched():
    head = r"\boxed{1}" + "x" * (answers.MAX_RESPONSE_CHARS + 10)
    assert extract_answer(head) is None
    assert extract_answer(head + r"\boxed{2}") == "2"


# ---------------------------------------------------------------------------- equivalence classes
EQUIVALENT = [
    ["0.5", r"\frac{1}{2}", "1/2", r"\dfrac12", r"\tfrac{1}{2}", "$0.50$", ".5", r"\boxed{\frac12}"],
    ["(B)", "B", "B.", "B)", "option B", r"\text{B}", "(b)", "Answer: B", "(B) 12 cm"],
    [r"90^\circ", "90", "90°", r"90^{\circ}", "90 degrees"],
    [r"50\%", "50", "50%"],
    ["1,000", "1000", "1{,}000", r"1\,000", r"\$1,000"],
    ["3.0", "3", "03", "+3", "3."],
    ["x = 5", "5", r"5\text{ cm}", "5 cm"],
    [r"-\frac{3}{4}", r"\frac{-3}{4}", "-0.75", "-3/4"],
    [r"1.5\times10^{3}", "1500", "1.5e3"],
    [r"\left( 1 , 2.50 \right)", "(1,2.5)", "(1, 5/2)"],
    ["Yes", "yes", " yes. "],
]


@pytest.mark.parametrize("group", EQUIVALENT, ids=lambda g: g[0])
def test_equivalence_classes(group):
    keys = {equivalence_key(answer) for answer in group}
    assert len(keys) == 1, {answer: equivalence_key(answer) for answer in group}
    for other in group[1:]:
        assert answers_equivalent(group[0], other, symbolic=False)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2", "3"),
        ("B", "C"),
        ("(A)", "(B)"),
        ("0.5", "0.25"),
        ("1/3", "0.333"),
        ("1,000", "1,001"),
        ("(1,2)", "(2,1)"),
        ("yes", "no"),
        ("b", "B"),  # a bare lowercase letter is a variable, not choice B
    ],
)
def test_non_equivalent(a, b):
    assert equivalence_key(a) != equivalence_key(b)
    assert not answers_equivalent(a, b)


def test_canonical_form_examples_and_idempotence():
    assert canonical_answer("05") == "5"
    assert canonical_answer("2.50") == "2.5"
    assert canonical_answer(r"\frac{1}{2}") == canonical_answer("0.5") == "0.5"
    assert canonical_answer(r"\frac{1}{3}") == "1/3"
    assert canonical_answer(r"a \cdot b") == r"a\cdot b"  # the space after a command is kept
    assert equivalence_key("0.5") == "1/2"
    samples = [group for groups in EQUIVALENT for group in groups] + [
        r"\frac{\pi}{2}",
        r"\sqrt2",
        "x \\in [1,2]",
    ]
    for raw in samples:
        once = canonical_answer(raw)
        assert canonical_answer(once) == once, raw


def test_canonical_is_idempotent_on_random_junk():
    rng = random.Random(1)
    atoms = [
        "1",
        "0",
        ".",
        ",",
        "/",
        "-",
        "x",
        "=",
        "(",
        ")",
        "{",
        "}",
        r"\frac",
        r"\dfrac",
        r"\text{",
        r"\%",
    ]
    atoms += [
        r"^\circ",
        "$",
        " ",
        "B",
        "(B)",
        "option ",
        " cm",
        r"\left(",
        r"\sqrt",
        "*",
        "Answer: ",
        r"\boxed{",
    ]
    for _ in range(3000):
        raw = "".join(rng.choice(atoms) for _ in range(rng.randrange(1, 7)))
        once = canonical_answer(raw)
        assert canonical_answer(once) == once, raw
        assert equivalence_key(once) == equivalence_key(raw), raw


def test_looks_symbolic_rejects_prose_and_letters():
    assert looks_symbolic(r"\frac{\pi}{2}")
    assert looks_symbolic(r"\sin(x)+1")
    assert not looks_symbolic("B")
    assert not looks_symbolic("yes")
    assert not looks_symbolic("x" * (answers.MAX_SYMBOLIC_CHARS + 1) + "+1")
    # math-verify would read these as products of symbols and call them equal
    assert not answers_equivalent("yes", "sey")


# ---------------------------------------------------------------------------- hostile inputs
def test_huge_and_nested_responses_return_quickly():
    hostile = [
        "a" * 1_000_000,
        "\\boxed{" * 150_000,
        "{" * 1_000_000 + r"\boxed{5}",
        r"\boxed{" + "{" * 200_000 + "}" * 200_000 + "}",
        "the answer is " * 80_000,
        r"\boxed{" + "9" * 20_000 + "}",
        "answer" + " " * 30_000 + "x",  # whitespace runs: regex backtracking bait
        "final answer" + " " * 30_000,
        r"\boxed" + " " * 30_000 + "x",
    ]
    start = time.perf_counter()
    for response in hostile:
        extracted = extract_answer(response)
        if extracted is not None:
            canonical_answer(extracted)
            equivalence_key(extracted)
            answers_equivalent(extracted, "1")
    assert time.perf_counter() - start < 2.0


def test_code_in_a_box_is_just_a_string(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    extracted = extract_answer(rf"\boxed{{{payload}}}")
    assert extracted == payload
    assert isinstance(canonical_answer(extracted), str)
    assert not needs_symbolic_check(extracted, "0")  # prose-like: never parsed
    assert not answers_equivalent(extracted, "0")
    # Even sent straight to the math-verify worker, the LaTeX parser does not evaluate it.
    assert answers.CHECKER.verdicts([(payload, "0")], 10.0)[0] is not True
    assert not marker.exists()


# ---------------------------------------------------------------------------- symbolic slow path
def test_symbolic_equivalence():
    assert answers_equivalent(r"\frac{\pi}{2}", r"\frac{2\pi}{4}")
    assert answers_equivalent("x+1", "1+x")
    assert answers_equivalent(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")
    assert not answers_equivalent(r"\sqrt{2}", r"\sqrt{3}")
    assert not answers_equivalent(r"\frac{\pi}{2}", r"\frac{2\pi}{4}", symbolic=False)


def test_symbolic_check_works_off_the_main_thread():
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(answers_equivalent, f"{k}x+x", f"{k + 1}x") for k in range(2, 5)]
        results = [future.result(timeout=60) for future in futures]
    assert results == [True, True, True]
    assert threading.current_thread() is threading.main_thread()


def _compare_and_report_worker(a: str, b: str) -> tuple[bool, int]:
    return answers_equivalent(a, b), answers.CHECKER.pid


def test_forked_child_starts_its_own_worker():
    import multiprocessing

    assert answers_equivalent("2v+v", "3v")  # parent worker running
    parent_worker = answers.CHECKER.pid
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        equal, child_worker = pool.apply(_compare_and_report_worker, ("2u+u", "3u"))
    assert equal is True
    assert child_worker != parent_worker  # the child did not talk over the parent's pipes
    assert answers_equivalent("2q+q", "3q")
    assert answers.CHECKER.pid == parent_worker


def test_symbolic_check_is_killed_at_its_timeout():
    assert answers_equivalent("2y+y", "3y")  # worker warm
    before = answers.symbolic_timeouts()
    start = time.perf_counter()
    # sympy evaluates 9^387420489 in one C call: no signal can interrupt it, a kill can. The
    # pre-check never lets this reach the worker, so it is sent to the worker directly here.
    assert answers.CHECKER.verdicts([(r"9^{9^{9^{9}}}", "z+1")], 0.5) == [None]
    assert time.perf_counter() - start < 2.0
    assert answers.symbolic_timeouts() == before + 1
    assert answers_equivalent("2w+w", "3w")  # a fresh worker takes over


# ---------------------------------------------------------------------------- fast rules vs math-verify
MIXED = [
    "2",
    "2.0",
    "1/3",
    r"\frac{1}{3}",
    "0.333333",
    r"\frac{\sqrt{2}}{2}",
    r"\frac{1}{\sqrt{2}}",
    "0.70710678",
    "0.7071",
    r"\sqrt{2}",
    "1.4142136",
    "1.41",
    r"2\sqrt{3}",
    r"\sqrt{12}",
    r"\frac{\pi}{2}",
    r"\frac{2\pi}{4}",
    "3.1415927",
    r"\pi",
    "x+1",
    "1+x",
    r"\frac{x}{2}",
    "0.5x",
    r"3^{20}",
    "3486784401",
    "B",
    "(B)",
    "yes",
]


def _math_verify_alone(a: str, b: str) -> bool:
    """The reference (the rules before numeric values and batching): exact rules, then math-verify per pair."""
    key_a, key_b = equivalence_key(a), equivalence_key(b)
    if key_a == key_b:
        return True
    if answers.answer_number(a) is not None and answers.answer_number(b) is not None:
        return False
    if not (looks_symbolic(key_a) and looks_symbolic(key_b)):
        return False
    return answers.CHECKER.verdicts([answers.symbolic_pair(a, b)], 10.0)[0] is True


def test_numeric_rules_and_batching_agree_with_math_verify_pair_by_pair():
    pairs = [(a, b) for i, a in enumerate(MIXED) for b in MIXED[i + 1 :]]
    answers.clear_caches()
    batched = answers.symbolic_verdicts(
        [answers.symbolic_pair(a, b) for a, b in pairs if needs_symbolic_check(a, b)], 30.0
    )
    fast_or_batched = {
        (a, b): answers.fast_verdict(a, b)
        if answers.fast_verdict(a, b) is not None
        else batched[answers.symbolic_pair(a, b)]
        for a, b in pairs
    }
    reference = {(a, b): _math_verify_alone(a, b) for a, b in pairs}
    assert fast_or_batched == reference
    assert sum(reference.values()) >= 10  # the set really has equal pairs in every form


def test_hostile_answers_never_reach_the_worker():
    hostile = [
        r"9^{9^{9^{9}}}",
        r"10^{10^{10}}",
        "2^{123456789}",
        "100000!",
        r"\Gamma(10^{10})",
        r"(10^{8})!",
    ]
    before = answers.symbolic_counters()
    for text in hostile:
        assert not answers.symbolically_safe(canonical_answer(text))
        assert not needs_symbolic_check(text, "z+1")
        assert not answers_equivalent(text, "z+1")
    after = answers.symbolic_counters()
    assert after["pairs"] == before["pairs"]  # nothing was parsed
    assert after["refused"] == before["refused"] + len(hostile)
    assert after["timeouts"] == before["timeouts"]
    # what is safe still goes through, exactly
    assert answers.symbolically_safe("3^{1009}") and answers_equivalent("3^{1009}", "3^{1008}\\cdot 3")


@pytest.mark.parametrize(
    ("noisy", "clean"),
    [
        ("2\u200b", "2"),  # zero-width space
        ("\u200f42\u200e", "42"),  # bidi marks
        ("\ufeff3.50", "3.5"),  # byte-order mark
        ("\uff12\uff15", "25"),  # full-width digits
        ("\uff08\uff22\uff09", "B"),  # full-width (B)
        ("1\u00a0000", "1000"),  # no-break space in a grouped number
    ],
)
def test_invisible_and_full_width_characters_vote_together(noisy, clean):
    assert equivalence_key(noisy) == equivalence_key(clean)


def test_superscripts_keep_their_meaning():
    assert canonical_answer("x²") != canonical_answer("x2")


def test_unicode_cleanup_keeps_line_breaks():
    """Line-based rules (a choice listing, the last sentence) see the same lines with or without a "°"."""
    from mmupt.answers.canonical import normalise_unicode

    assert normalise_unicode("30°\n(B)\u00a045°\u200b\tok") == "30°\n(B) 45°\tok"
    assert normalise_unicode("\uff08\uff22\uff09\u3000x") == "(B) x"
