"""Parallel, time-bounded scoring: no response can hang an evaluation.

Responses are scored in chunks by a few worker processes. Each chunk gets a deadline from the
moment it is handed out; a worker that overruns it (a pathological response stuck in C code,
which no in-process timer can interrupt) is killed and replaced, its chunk is split into single
responses with ``item_timeout_s`` each, and a single response that still overruns is marked
``note="timeout"``. A symbolic comparison that ``answers_equivalent`` itself abandoned on its own
time limit is also reported as ``timeout`` when it leaves the verdict wrong.

Workers are ``mmupt.worker.ChildProcess`` children (why not ``multiprocessing``: see there).
Scorer functions travel by reference, so they must be module-level. Workers are started lazily
and kept for the life of the process, so their start-up cost is paid once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from mmupt.answers import symbolic_timeouts
from mmupt.worker import ChildProcess, serve
from schemas.evaluate import ScoringConfig
from stages.evaluation.types import EvalItem, Verdict

logger = logging.getLogger(__name__)

TIMEOUT_NOTE = "timeout"
CHUNK_BUDGET_FACTOR = 2.0
"""A chunk may take this many ``item_timeout_s`` before it is considered stuck and split."""
START_TIMEOUT_S = 120.0
"""How long a fresh worker may take to start (imports on a busy machine)."""

ScoreFn = Callable[[EvalItem, str], Verdict]
Job = tuple[EvalItem, str]


# ---------------------------------------------------------------------------- scoring one response
def score_one(fn: ScoreFn, item: EvalItem, response: str) -> Verdict:
    """Score one response; a scorer exception becomes a wrong verdict with a note (and is counted)."""
    before = symbolic_timeouts()
    try:
        verdict = fn(item, response)
    except Exception as err:  # noqa: BLE001 - one bad response must not lose the whole run
        return Verdict(None, False, f"scorer_error: {type(err).__name__}: {err}"[:200])
    if not verdict.correct and symbolic_timeouts() != before:
        return Verdict(verdict.extracted, False, TIMEOUT_NOTE)
    return verdict


# ---------------------------------------------------------------------------- workers
def worker_main() -> None:  # pragma: no cover - runs in the worker process
    """Worker entry: each request is ``(fn, jobs)``, each reply the list of their verdicts."""
    serve(lambda request: [score_one(request[0], item, response) for item, response in request[1]])


def _new_worker() -> ChildProcess:
    return ChildProcess.started_and_ready(__name__, "worker_main", START_TIMEOUT_S)


_LOCK = threading.Lock()
_WORKERS: list[ChildProcess] = []


def _workers(count: int) -> list[ChildProcess]:
    _WORKERS[:] = [w for w in _WORKERS if w.alive()]
    while len(_WORKERS) < count:
        _WORKERS.append(_new_worker())
    return _WORKERS[:count]


def shutdown_workers() -> None:
    """Stop the scoring workers (they are restarted on the next call)."""
    while _WORKERS:
        worker = _WORKERS.pop()
        with contextlib.suppress(OSError):
            worker.kill()


atexit.register(shutdown_workers)


def _replace(worker: ChildProcess) -> None:
    worker.kill()
    if worker in _WORKERS:
        _WORKERS.remove(worker)


def score_all(
    fn: ScoreFn,
    items: Sequence[EvalItem],
    responses: Sequence[str],
    config: ScoringConfig,
    *,
    grace_s: float = 2.0,
) -> list[Verdict]:
    """One verdict per (item, response), in order; never blocks longer than the configured limits.

    ``grace_s`` is added to every deadline (process wake-up, pickling) and is not a scoring budget.
    """
    jobs: list[Job] = [
        (item.for_scoring(), response) for item, response in zip(items, responses, strict=True)
    ]
    if config.workers == 0 or not jobs:
        return [score_one(fn, item, response) for item, response in jobs]
    results: list[Verdict | None] = [None] * len(jobs)
    size = config.chunk_size
    queue: deque[list[int]] = deque(
        list(range(s, min(s + size, len(jobs)))) for s in range(0, len(jobs), size)
    )
    with _LOCK:
        busy: dict[int, tuple[ChildProcess, list[int], float]] = {}
        while queue or busy:
            for worker in _workers(config.workers):
                if id(worker) in busy or not queue:
                    continue
                chunk = queue.popleft()
                factor = 1.0 if len(chunk) == 1 else CHUNK_BUDGET_FACTOR
                try:
                    worker.send((fn, [jobs[i] for i in chunk]))
                except (BrokenPipeError, OSError):
                    _replace(worker)  # died while idle; the chunk waits for a fresh worker
                    queue.appendleft(chunk)
                    continue
                busy[id(worker)] = (
                    worker,
                    chunk,
                    time.monotonic() + config.item_timeout_s * factor + grace_s,
                )
            wait = max(0.0, min(deadline for _, _, deadline in busy.values()) - time.monotonic())
            ready = set(select.select([w.fd for w, _, _ in busy.values()], [], [], wait)[0])
            for key, (worker, chunk, deadline) in list(busy.items()):
                if worker.fd not in ready and time.monotonic() < deadline:
                    continue
                failure = None
                try:
                    verdicts = worker.poll(0.0)
                except EOFError:
                    verdicts, failure = None, "scorer_error: worker died"
                if verdicts is not None:
                    for index, verdict in zip(chunk, verdicts, strict=True):
                        results[index] = verdict
                    del busy[key]
                    continue
                if failure is None and time.monotonic() < deadline:
                    continue  # a partial frame; the rest is on its way
                del busy[key]
                _replace(worker)
                if len(chunk) > 1:
                    logger.warning(
                        "scoring chunk of %d responses overran or failed; retrying them one by one",
                        len(chunk),
                    )
                    queue.extend([index] for index in chunk)
                else:
                    note = failure or TIMEOUT_NOTE
                    results[chunk[0]] = Verdict(None, False, note)
                    logger.warning(
                        "scoring response %r: %s (limit %.1fs)",
                        jobs[chunk[0]][0].id,
                        note,
                        config.item_timeout_s,
                    )
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]
