"""Paired comparison of two models on the same rows: rows fixed, rows broken, McNemar's exact p.

Why paired: two accuracies on the same 1,000 rows each have a binomial std of ~1.5 points, but the
rows both models get right (or wrong) carry no information about the difference; only the rows
that flipped do. McNemar's exact test is a two-sided binomial test on those flips (scipy is a dev
dependency only, and the exact tail is a few lines of integer arithmetic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import comb


@dataclass(frozen=True)
class PairedResult:
    rows: int
    before: float  # accuracy of the first model on the shared rows
    after: float
    fixed: int  # wrong before, right after
    broken: int  # right before, wrong after
    p_value: float

    @property
    def gain_points(self) -> float:
        return round(100 * (self.after - self.before), 1)


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value.

    >>> mcnemar_exact(10, 10)
    1.0
    >>> round(mcnemar_exact(30, 10), 4)
    0.0022
    """
    n = fixed + broken
    if n == 0:
        return 1.0
    k = min(fixed, broken)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(before: Mapping[str, bool], after: Mapping[str, bool]) -> PairedResult:
    """Compare per-row correctness (row id -> correct) over the rows both models answered."""
    shared = sorted(set(before) & set(after))
    if not shared:
        raise ValueError("no row answered by both models: compare predictions of the same benchmark rows")
    fixed = sum(after[i] and not before[i] for i in shared)
    broken = sum(before[i] and not after[i] for i in shared)
    n = len(shared)
    return PairedResult(
        rows=n,
        before=sum(before[i] for i in shared) / n,
        after=sum(after[i] for i in shared) / n,
        fixed=fixed,
        broken=broken,
        p_value=mcnemar_exact(fixed, broken),
    )
