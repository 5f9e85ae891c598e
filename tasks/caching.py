"""Cache keys for stage tasks: input artifact hashes + config hash + a hash of the packages' source.

A stage re-run with the same inputs, config and code is a cache hit (Prefect shows it as
``Cached``). The flow asks for a refresh when the output artifact is missing, so deleting an
artifact re-runs its stage instead of returning a path to nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from pydantic import BaseModel

from mmupt.errors import MmuptError
from mmupt.store import MANIFEST, producer_key, read_manifest, source_fingerprint

UNCACHED_PARAMS = {"parent_run_id"}  # bookkeeping that differs per run but never changes the output


def fingerprint_path(path: Path) -> str:
    """Identity of an input path: the artifact's content hash, or a model directory's file stats."""
    if (path / MANIFEST).is_file():
        return read_manifest(path).content_hash
    if (path.parent / MANIFEST).is_file():  # e.g. <sft artifact>/model
        return f"{read_manifest(path.parent).content_hash}/{path.name}"
    if path.is_dir():
        stats = sorted(
            (p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file()
        )
        return hashlib.sha256(json.dumps(stats).encode()).hexdigest()
    if path.is_file():
        stat = path.stat()
        return f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"missing:{path}"


def fingerprint(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.config_hash()
    if isinstance(value, Path):
        return fingerprint_path(value)
    if isinstance(value, list | tuple):
        return [fingerprint(v) for v in value]
    if isinstance(value, dict):
        return {k: fingerprint(v) for k, v in sorted(value.items())}
    return value


def stage_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect ``cache_key_fn``: everything that determines a stage's output, except ``out_dir``.

    ``out_dir`` is part of the key by its string only, so the same inputs written elsewhere are a
    different artifact (Prefect's cached result is that path).
    """
    return _key(context, parameters, with_location=True)


def producer_key_of(context: Any, parameters: dict[str, Any]) -> str:
    """The key stamped into a stage's manifest: the cache key without ``out_dir``.

    The manifest sits in ``out_dir``, so its location needs no stamp; leaving it out lets a moved
    or renamed campaign folder be recognised as finished work (its inputs are identified by content).
    """
    return _key(context, parameters, with_location=False)


def _key(context: Any, parameters: dict[str, Any], *, with_location: bool) -> str:
    payload = {
        "task": context.task.name,
        "code": source_fingerprint(),
        "params": {
            k: (str(v) if k == "out_dir" else fingerprint(v))
            for k, v in sorted(parameters.items())
            if k not in UNCACHED_PARAMS and (with_location or k != "out_dir")
        },
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def output_ready(out_dir: Path) -> bool:
    return (Path(out_dir) / MANIFEST).is_file()


def finished_by(out_dir: Path, key: str) -> bool:
    """Whether ``out_dir`` holds a complete artifact that this very work (same cache key) produced."""
    if not output_ready(out_dir):
        return False
    try:
        return read_manifest(out_dir).producer_key == key
    except MmuptError:  # an unreadable manifest is not a finished artifact: redo the work
        return False


def trust_finished(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a stage task body: return at once when its output is already the product of this work.

    Prefect's cache record is written after the task returns; a process killed between the stage's
    manifest and that record left a finished artifact that Prefect does not know. The task's own
    cache key, stamped into the manifest (``mmupt.store.producer_key``), recognises it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from prefect.context import TaskRunContext

        context = TaskRunContext.get()
        if context is None:  # called as a plain function (tests, scripts): no orchestrator key
            return fn(*args, **kwargs)
        key = producer_key_of(context, context.parameters)
        out_dir = Path(context.parameters["out_dir"])
        if finished_by(out_dir, key):
            get_run_logger().info(
                "%s: finished by an earlier run (its manifest carries this task's key)", out_dir
            )
            return str(out_dir)
        with producer_key(key):
            return fn(*args, **kwargs)

    return wrapper
