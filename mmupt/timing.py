"""One timer for every phase measurement: a training step's phases and a round's stages.

timer = PhaseTimer()
with timer("rollout"):
    ...
timer.seconds            # {"rollout": 1.23}, accumulated over repeated phases
timer.metrics()          # {"timing_s/rollout": 1.23}: the names MLflow and the records use
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from schemas.metrics import timing_metric


class PhaseTimer:
    """Seconds per named phase; a phase entered twice accumulates (a step's several updates)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

    def metrics(self) -> dict[str, float]:
        """``timing_s/<phase>`` -> seconds (``schemas.metrics.timing_metric``)."""
        return {timing_metric(phase): seconds for phase, seconds in self.seconds.items()}
