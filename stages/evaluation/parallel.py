"""Parallel, time-bounded scoring: no response can hang an evaluation.

Responses are scored in chunks by a few worker processes. Each chunk gets a deadline from the
moment it is handed out; a worker that overruns it (a pathological response stuck in C code,
which no in-process timer can interrupt) is killed and replaced, its chunk is split into single
responses with ``item_timeout_s`` each, and a single response that still overruns is marked
``note="timeout"``. A symbolic comparison that ``answers_equivalent`` itself abandoned on its own
time limit is also reported as ``timeout`` when it leaves the verdict wrong.

Why plain ``subprocess`` workers and not ``multiprocessing``: a ``fork``ed child would share the
parent's torch threads and the pipes of ``mmupt.answers``' symbolic-check worker, and a
``spawn``ed one re-imports the caller's ``__main__`` (a script without a main guard would start
workers recursively). Here a worker is ``python -c`` importing only this module; it talks over
its own stdin/stdout with length-prefixed pickles (trusted: our own child process). Scorer
functions travel by reference, so they must be module-level. Workers are started lazily and
kept for the life of the process, so their start-up cost is paid once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from mmupt.answers import symbolic_timeouts
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
_HEADER = struct.Struct(">Q")
_BOOT = "import sys; sys.path.insert(0, {root!r}); from stages.evaluation.parallel import worker_main; worker_main()"


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


# ---------------------------------------------------------------------------- framing
def _write_frame(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - frames come from our own parent process


def worker_main() -> None:  # pragma: no cover - runs in the worker process
    """Worker loop: first frame is the parent's sys.path, then (fn, jobs) -> verdicts, until EOF."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    source = sys.stdin.buffer
    try:
        paths = _read_frame(source)
        sys.path[:0] = [p for p in paths if p not in sys.path]
        _write_frame(protocol, "ready")
        while True:
            fn, jobs = _read_frame(source)
            _write_frame(protocol, [score_one(fn, item, response) for item, response in jobs])
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


# ---------------------------------------------------------------------------- parent side
class _Worker:
    """One scoring process and the partial frame read from it so far."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(root=root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.buffer = b""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.fd = self.process.stdout.fileno()
        _write_frame(self.stdin, list(sys.path))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            frame = self.poll(max(0.0, deadline - time.monotonic()))
            if frame == "ready":
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"a scoring worker did not start within {START_TIMEOUT_S:.0f}s")

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, obj: Any) -> None:
        _write_frame(self.stdin, obj)

    def poll(self, timeout: float) -> Any:
        """A complete frame if one arrives within ``timeout`` seconds, else ``None``; EOFError if the worker died."""
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            if not select.select([self.fd], [], [], timeout)[0]:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("scoring worker exited")
            self.buffer += chunk
            timeout = 0.0

    def _parse(self) -> Any:
        if len(self.buffer) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self.buffer)
        if len(self.buffer) < _HEADER.size + size:
            return None
        data = self.buffer[_HEADER.size : _HEADER.size + size]
        self.buffer = self.buffer[_HEADER.size + size :]
        return pickle.loads(data)  # noqa: S301 - frames come from our own child process

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


_LOCK = threading.Lock()
_WORKERS: list[_Worker] = []


def _workers(count: int) -> list[_Worker]:
    _WORKERS[:] = [w for w in _WORKERS if w.alive()]
    while len(_WORKERS) < count:
        _WORKERS.append(_Worker())
    return _WORKERS[:count]


def shutdown_workers() -> None:
    """Stop the scoring workers (they are restarted on the next call)."""
    while _WORKERS:
        worker = _WORKERS.pop()
        with contextlib.suppress(OSError):
            worker.kill()


atexit.register(shutdown_workers)


def _replace(worker: _Worker) -> None:
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
        busy: dict[int, tuple[_Worker, list[int], float]] = {}
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
