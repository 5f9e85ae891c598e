"""Parallel, time-bounded scoring: no response can hang an evaluation.

Responses are scored in chunks by a pool of ``spawn``-started worker processes (``spawn``, not
``fork``: the parent may hold torch threads and the symbolic-check worker of ``mmupt.answers``,
whose pipes a forked child must not share). The parent waits for each chunk with a deadline;
when a chunk overruns it (a pathological response stuck in C code, which no in-process timer can
interrupt), the pool is terminated - killing the stuck worker - finished chunks are kept, the
others are re-queued, and the overrunning chunk is split into single responses that each get
``item_timeout_s``. A single response that still overruns is marked ``note="timeout"``.
A symbolic comparison that ``answers_equivalent`` itself abandoned on its own time limit is also
reported as ``timeout`` when it leaves the verdict wrong.

The pool is created lazily and kept for the life of the process, so its start-up cost (a second
or two) is paid once, not per ``run_score``.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool

from mmupt.answers import symbolic_timeouts
from schemas.evaluate import ScoringConfig
from stages.evaluation.types import EvalItem, Verdict

logger = logging.getLogger(__name__)

TIMEOUT_NOTE = "timeout"
CHUNK_BUDGET_FACTOR = 2.0
"""A chunk may take this many ``item_timeout_s`` before it is considered stuck and split."""
START_TIMEOUT_S = 180.0
"""How long a fresh pool may take to start its workers (imports on a busy machine)."""

ScoreFn = Callable[[EvalItem, str], Verdict]
Job = tuple[EvalItem, str]

_LOCK = threading.Lock()
_POOL: tuple[int, Pool] | None = None


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


def _score_chunk(fn: ScoreFn, jobs: list[Job]) -> list[Verdict]:
    return [score_one(fn, item, response) for item, response in jobs]


def _ping(_: int) -> bool:
    return True


def _pool(workers: int) -> Pool:
    global _POOL
    if _POOL is not None and _POOL[0] == workers:
        return _POOL[1]
    shutdown_pool()
    pool = multiprocessing.get_context("spawn").Pool(workers)
    try:
        pool.map_async(_ping, range(workers), chunksize=1).get(timeout=START_TIMEOUT_S)
    except multiprocessing.TimeoutError:
        pool.terminate()
        raise RuntimeError(f"scoring workers did not start within {START_TIMEOUT_S:.0f}s") from None
    _POOL = (workers, pool)
    return pool


def shutdown_pool() -> None:
    """Terminate the scoring pool (it is recreated on the next call)."""
    global _POOL
    if _POOL is not None:
        _POOL[1].terminate()
        _POOL[1].join()
        _POOL = None


atexit.register(shutdown_pool)


def _round(
    fn: ScoreFn,
    jobs: list[Job],
    pending: list[list[int]],
    results: list[Verdict | None],
    config: ScoringConfig,
    grace_s: float,
) -> tuple[list[list[int]], list[list[int]]]:
    """Run ``pending`` chunks; return (the chunk that overran, chunks to re-queue) or ([], [])."""
    pool = _pool(config.workers)
    handles = [(chunk, pool.apply_async(_score_chunk, (fn, [jobs[i] for i in chunk]))) for chunk in pending]
    for position, (chunk, handle) in enumerate(handles):
        factor = 1.0 if len(chunk) == 1 else CHUNK_BUDGET_FACTOR
        try:
            verdicts = handle.get(timeout=config.item_timeout_s * factor + grace_s)
        except multiprocessing.TimeoutError:
            requeue = []
            for other, other_handle in handles[position + 1 :]:
                if other_handle.ready() and other_handle.successful():
                    for index, verdict in zip(other, other_handle.get(), strict=True):
                        results[index] = verdict
                else:
                    requeue.append(other)
            shutdown_pool()  # kills the worker stuck on this chunk
            logger.warning("scoring chunk of %d response(s) overran its time limit; retrying them one by one", len(chunk))
            return [chunk], requeue
        for index, verdict in zip(chunk, verdicts, strict=True):
            results[index] = verdict
    return [], []


def score_all(
    fn: ScoreFn,
    items: Sequence[EvalItem],
    responses: Sequence[str],
    config: ScoringConfig,
    *,
    grace_s: float = 5.0,
) -> list[Verdict]:
    """One verdict per (item, response), in order; never blocks longer than the configured limits."""
    jobs: list[Job] = [(item.without_images(), response) for item, response in zip(items, responses, strict=True)]
    if config.workers == 0 or not jobs:
        return [score_one(fn, item, response) for item, response in jobs]
    results: list[Verdict | None] = [None] * len(jobs)
    size = config.chunk_size
    pending = [list(range(start, min(start + size, len(jobs)))) for start in range(0, len(jobs), size)]
    with _LOCK:
        while pending:
            stuck, requeue = _round(fn, jobs, pending, results, config, grace_s)
            pending = requeue
            for chunk in stuck:
                if len(chunk) == 1:
                    results[chunk[0]] = Verdict(None, False, TIMEOUT_NOTE)
                    logger.warning("scoring response %r timed out after %.1fs", jobs[chunk[0]][0].id, config.item_timeout_s)
                else:
                    pending.extend([index] for index in chunk)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]
