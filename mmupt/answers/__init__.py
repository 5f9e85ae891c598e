r"""Final answers: extraction, canonical forms and equivalence, shared by voting and evaluation.

Voting runs this on every rollout, so the common path is cheap string work:

1. ``extract`` pulls the final answer out of a response (last balanced ``\boxed{}``, then
   documented fallbacks). Linear time, bounded input.
2. ``canonical`` rewrites it into one canonical string (cached) and a voting key (numbers as
   exact rationals): answers with one key are one vote without further work.
3. ``equivalence`` decides the few remaining pairs of distinct keys: exact rules, numeric values
   of closed expressions, then ``symbolic`` (math-verify in a killable child process, batched and
   time-budgeted, hostile shapes refused before parsing).

Model text is never evaluated.
"""

from mmupt.answers.canonical import (
    CHOICE_LETTERS,
    MAX_CANONICAL_CHARS,
    MAX_NUMBER_CHARS,
    MAX_SYMBOLIC_CHARS,
    answer_number,
    canonical_answer,
    equivalence_key,
    format_number,
    looks_symbolic,
)
from mmupt.answers.equivalence import (
    SymbolicBudget,
    answers_equivalent,
    clear_caches,
    decide_pairs,
    fast_verdict,
    needs_symbolic_check,
    symbolic_counters,
    symbolic_pair,
    symbolic_timeouts,
    symbolic_verdicts,
)
from mmupt.answers.extract import MAX_RESPONSE_CHARS, extract_answer
from mmupt.answers.symbolic import CHECKER, SYMBOLIC_TIMEOUT_S, symbolically_safe

__all__ = [
    "CHECKER",
    "CHOICE_LETTERS",
    "MAX_CANONICAL_CHARS",
    "MAX_NUMBER_CHARS",
    "MAX_RESPONSE_CHARS",
    "MAX_SYMBOLIC_CHARS",
    "SYMBOLIC_TIMEOUT_S",
    "SymbolicBudget",
    "answer_number",
    "answers_equivalent",
    "canonical_answer",
    "clear_caches",
    "decide_pairs",
    "equivalence_key",
    "extract_answer",
    "fast_verdict",
    "format_number",
    "looks_symbolic",
    "needs_symbolic_check",
    "symbolic_counters",
    "symbolic_pair",
    "symbolic_timeouts",
    "symbolic_verdicts",
    "symbolically_safe",
]
