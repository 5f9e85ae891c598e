"""One helper for the killable child processes that do risky work (symbolic maths, scoring).

Why a child process: a pathological input can keep a C-level computation (a big-integer power,
a regex) busy for minutes, and no in-process timer interrupts C code; a child can simply be
killed. Why plain ``subprocess`` and not ``multiprocessing``: a ``fork``ed child would share
the parent's torch threads and pipes, and a ``spawn``ed one re-imports the caller's
``__main__`` (a script without a main guard would start workers recursively). A child here is
``python -c`` importing one module-level entry function.

Protocol: length-prefixed pickles over the child's own stdin/stdout (trusted: both ends are
ours; model text travels as data inside them, never as code). The child's fd 1 is pointed at
stderr, so anything a library prints cannot corrupt the protocol. The first frame is the
parent's ``sys.path``; the child answers ``"ready"``, then one reply frame per request frame.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

_HEADER = struct.Struct(">Q")
_ROOT = str(Path(__file__).resolve().parents[1])
_BOOT = "import sys; sys.path.insert(0, {root!r}); from {module} import {entry}; {entry}()"
_READY = "ready"


class WorkerUnavailable(RuntimeError):
    """The child could not be started, died, or did not answer in time."""


# ---------------------------------------------------------------------------- framing
def write_frame(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """Blocking read of one frame (child side); EOFError when the parent closed the pipe."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - frames come from our own parent process


# ---------------------------------------------------------------------------- child side
def serve(handle: Callable[[Any], Any]) -> None:  # pragma: no cover - runs in the child process
    """Child loop: reply ``handle(request)`` to every request frame until the parent goes away."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = sys.stdin.buffer
    try:
        paths = read_frame(source)
        sys.path[:0] = [path for path in paths if path not in sys.path]
        write_frame(protocol, _READY)
        while True:
            write_frame(protocol, handle(read_frame(source)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


# ---------------------------------------------------------------------------- parent side
class ChildProcess:
    """A child running ``module.entry()`` (which calls ``serve``), with non-blocking reads.

    Starting returns at once; ``wait_ready`` waits for the child's handshake, so a replacement
    can warm up while the parent does other work.
    """

    def __init__(self, module: str, entry: str) -> None:
        self.module = module
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT.format(root=_ROOT, module=module, entry=entry)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as err:
            raise WorkerUnavailable(f"cannot start a {module} worker: {err}") from err
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.fd = self.process.stdout.fileno()
        self.buffer = b""
        self.started = time.monotonic()
        self.ready = False
        try:
            self.send(list(sys.path))
        except OSError as err:
            self.kill()
            raise WorkerUnavailable(f"a {module} worker exited at start ({err})") from err

    def wait_ready(self, timeout: float) -> bool:
        """Whether the child has finished starting, waiting up to ``timeout`` seconds; a dead child raises."""
        if not self.ready:
            try:
                self.ready = self.poll(timeout) == _READY
            except (OSError, EOFError) as err:
                self.kill()
                raise WorkerUnavailable(f"a {self.module} worker exited at start ({err})") from err
        return self.ready

    @classmethod
    def started_and_ready(cls, module: str, entry: str, start_timeout_s: float) -> ChildProcess:
        """Start a child and wait for it; ``WorkerUnavailable`` when it is not up in time."""
        child = cls(module, entry)
        if not child.wait_ready(start_timeout_s):
            child.kill()
            raise WorkerUnavailable(f"a {module} worker did not start within {start_timeout_s:.0f}s")
        return child

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, obj: Any) -> None:
        write_frame(self.stdin, obj)

    def poll(self, timeout: float) -> Any:
        """A complete frame if one arrives within ``timeout`` seconds, else None; EOFError if the child died."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("worker exited")
            self.buffer += chunk

    def request(self, obj: Any, timeout: float) -> Any:
        """Send one request and wait for its reply; a child that overruns ``timeout`` is killed.

        Raises ``WorkerUnavailable`` on timeout or death (the caller starts a fresh child if it
        wants one).
        """
        try:
            self.send(obj)
            reply = self.poll(timeout)
        except (OSError, EOFError) as err:
            self.kill()
            raise WorkerUnavailable(f"worker died ({err})") from err
        if reply is None:
            self.kill()
            raise WorkerUnavailable(f"worker did not answer within {timeout:.1f}s")
        return reply

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
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.close_pipes()

    def close_pipes(self) -> None:
        """Close our ends without killing (in a forked child, the process belongs to the parent)."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
