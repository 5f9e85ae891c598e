"""Batch execution of synthesis: shards, in-process or on Ray actors, resumable per shard.

Why shards: generation over a real dataset takes hours; a crash, a pre-empted node or a bad row
must cost one shard, not the run. Each finished shard is written (atomically, by
``mmupt.store.write_artifact``) to ``<shards_root>/<shard-id>/``; a re-run skips every shard whose
directory holds a manifest. The shard id is its position plus a hash of everything that decides
its output (row ids, generation settings, prompt version, model files), so a changed config or
model never reuses a stale shard.

Where shards run: with ``ray.enabled`` or ``ray.address`` on ``ray.num_actors`` actors, each holding
one engine (hf on CPU, vllm on a GPU, via ``mmupt.engine.build_engine``); otherwise one engine in
this process. Each shard's seed comes from the base seed and its row ids (not from the model's
path), so both paths, and a rerun in another folder, give the same rows. Shard rows travel to the
actor and results back through Ray's object store, so no shared filesystem is needed; only the
driver writes.

A shard that raises is retried ``shard_retries`` times (on a fresh actor when the actor died);
then the remaining shards still run, and one ``MmuptError`` names every failed shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmupt.engine.base import Engine
from mmupt.errors import MmuptError
from mmupt.ray_local import start_ray
from mmupt.store import MANIFEST, read_manifest, read_table, write_artifact
from schemas.engine import EngineConfig
from schemas.synthesize import SynthesizeConfig
from stages.synthesis.generate import ShardResult, Tally, synthesize_shard
from stages.synthesis.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

SHARD_KIND = "synthesize-shard"


@dataclass(frozen=True)
class Shard:
    index: int
    shard_id: str
    seed: int
    rows: pa.Table  # a slice of the samples (SAMPLES schema)


def model_fingerprint(model_dir: str | Path) -> str:
    """Identity of a checkpoint directory from its files' names, sizes and mtimes (cheap for 7B weights)."""
    root = Path(model_dir).resolve()
    digest = hashlib.sha256(str(root).encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def plan_shards(samples: pa.Table, config: SynthesizeConfig, model_key: str) -> list[Shard]:
    """Consecutive slices of ``shard_size`` rows, each with a content-derived id and seed.

    The id covers the model's fingerprint (a shard from another checkpoint is never resumed), but
    the seed covers only the seed and the rows: the fingerprint holds the checkpoint's path and
    mtimes, so a seed drawn from it made every fresh run of the same campaign sample differently.
    """
    settings = json.dumps(
        {"config": config.generation_fingerprint(), "prompt": PROMPT_VERSION, "model": model_key},
        sort_keys=True,
    )
    ids = samples.column("id").to_pylist()
    shards = []
    for index, start in enumerate(range(0, samples.num_rows, config.shard_size)):
        rows = hashlib.sha256()
        for rid in ids[start : start + config.shard_size]:
            rows.update(f"\x00{rid}".encode())
        rows_key = rows.hexdigest()
        key = hashlib.sha256(f"{settings}\x00{rows_key}".encode()).hexdigest()
        seed = int(hashlib.sha256(f"{config.seed}:{rows_key}".encode()).hexdigest()[:8], 16)
        shards.append(Shard(index, f"{index:05d}-{key[:12]}", seed, samples.slice(start, config.shard_size)))
    return shards


def shard_done(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def save_shard(path: Path, shard: Shard, result: ShardResult, config: SynthesizeConfig) -> None:
    write_artifact(
        path,
        SHARD_KIND,
        {"synthetic": result.synthetic, "rejects": result.rejects},
        config=config.generation_fingerprint(),
        stats={"shard_id": shard.shard_id, "seed": shard.seed, "tally": result.tally.to_dict()},
    )


def load_shard(path: Path) -> ShardResult:
    manifest = read_manifest(path)
    return ShardResult(
        read_table(path, "synthetic"), read_table(path, "rejects"), Tally.from_dict(manifest.stats["tally"])
    )


def make_engine(model_dir: str | Path, config: EngineConfig) -> Engine:
    """One engine for ``model_dir``: ``mmupt.engine.build_engine`` (hf or vllm per ``config.backend``)."""
    from mmupt.engine import build_engine

    return build_engine(model_dir, config)


@dataclass
class ShardOutcome:
    ran: list[str]
    failed: dict[str, str]  # shard id -> last error


def run_shards(
    shards: list[Shard],
    shards_root: Path,
    model_dir: Path,
    model_id: str,
    config: SynthesizeConfig,
    on_done: Callable[[Shard], None] | None = None,
) -> list[ShardResult]:
    """Run every unfinished shard, then load all shards in order. Raises ``MmuptError`` on failures."""
    pending = [s for s in shards if not shard_done(shards_root / s.shard_id)]
    log.info(
        "synthesis: %d shard(s), %d to run, %d finished earlier",
        len(shards),
        len(pending),
        len(shards) - len(pending),
    )
    if pending:
        runner = _run_ray if config.ray.active else _run_local
        outcome = runner(pending, shards_root, model_dir, model_id, config, on_done or (lambda shard: None))
        if outcome.failed:
            attempts = config.shard_retries + 1
            detail = "; ".join(f"{sid}: {err}" for sid, err in sorted(outcome.failed.items()))
            done = sum(shard_done(shards_root / s.shard_id) for s in shards)
            raise MmuptError(
                f"synthesis: {len(outcome.failed)} shard(s) failed after {attempts} attempt(s) ({detail}); "
                f"{done} finished shard(s) are kept in {shards_root}: fix the cause and re-run to resume"
            )
    return [load_shard(shards_root / s.shard_id) for s in shards]


def _describe(err: BaseException) -> str:
    """One line: the error's type and message (a Ray task error is unwrapped to its cause)."""
    err = getattr(err, "cause", None) or err
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text[:300]}"


# ---------------------------------------------------------------------------- in-process
def _run_local(
    pending: list[Shard],
    shards_root: Path,
    model_dir: Path,
    model_id: str,
    config: SynthesizeConfig,
    on_done: Callable[[Shard], None],
) -> ShardOutcome:
    engine = make_engine(model_dir, config.engine)
    outcome = ShardOutcome([], {})
    for shard in pending:
        for attempt in range(config.shard_retries + 1):
            try:
                result = synthesize_shard(engine, shard.rows.to_pylist(), config, shard.seed, model_id)
            except Exception as err:  # noqa: BLE001 - any crash of one shard is retried, then reported
                log.warning("shard %s attempt %d failed: %s", shard.shard_id, attempt + 1, _describe(err))
                outcome.failed[shard.shard_id] = _describe(err)
                continue
            outcome.failed.pop(shard.shard_id, None)
            save_shard(shards_root / shard.shard_id, shard, result, config)
            outcome.ran.append(shard.shard_id)
            on_done(shard)
            break
    return outcome


# ---------------------------------------------------------------------------- Ray
class ShardWorker:
    """A Ray actor holding one engine; wrapped with ``ray.remote`` at run time."""

    def __init__(self, model_dir: str, engine_config: EngineConfig, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)  # actors share the node's cores; oversubscription is slower
        self.engine = make_engine(model_dir, engine_config)

    def run(self, rows: pa.Table, config: SynthesizeConfig, seed: int, model_id: str) -> ShardResult:
        return synthesize_shard(self.engine, rows.to_pylist(), config, seed, model_id)


def _ensure_ray(config: SynthesizeConfig) -> bool:
    """Connect to (or start) Ray; True when this call started it (and should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    env = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    start_ray(config.ray.address, max(2, int(config.ray.num_actors * config.ray.cpus_per_actor + 0.999)), env)
    return True


def _run_ray(
    pending: list[Shard],
    shards_root: Path,
    model_dir: Path,
    model_id: str,
    config: SynthesizeConfig,
    on_done: Callable[[Shard], None],
) -> ShardOutcome:
    import ray
    from ray.exceptions import RayActorError

    started = _ensure_ray(config)
    spec = config.ray
    gpus = (
        spec.gpus_per_actor
        if spec.gpus_per_actor is not None
        else (1 if config.engine.backend == "vllm" else 0)
    )
    actor_cls = ray.remote(ShardWorker).options(num_cpus=spec.cpus_per_actor, num_gpus=gpus)
    threads = max(1, int(spec.cpus_per_actor))

    def new_actor() -> Any:
        return actor_cls.remote(str(model_dir), config.engine, threads)

    outcome = ShardOutcome([], {})
    queue = [(shard, 0) for shard in pending]  # (shard, attempts so far)
    idle = [new_actor() for _ in range(min(spec.num_actors, len(pending)))]
    running: dict[Any, tuple[Shard, int, Any]] = {}
    try:
        while queue or running:
            while queue and idle:
                shard, attempts = queue.pop(0)
                actor = idle.pop(0)
                ref = actor.run.remote(shard.rows, config, shard.seed, model_id)
                running[ref] = (shard, attempts, actor)
            [ref], _ = ray.wait(list(running), num_returns=1)
            shard, attempts, actor = running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - task error or dead actor: retry, then report
                log.warning("shard %s attempt %d failed: %s", shard.shard_id, attempts + 1, _describe(err))
                if isinstance(err, RayActorError):
                    ray.kill(actor, no_restart=True)
                    actor = new_actor()
                idle.append(actor)
                if attempts < config.shard_retries:
                    queue.append((shard, attempts + 1))
                else:
                    outcome.failed[shard.shard_id] = _describe(err)
                continue
            idle.append(actor)
            save_shard(shards_root / shard.shard_id, shard, result, config)
            outcome.ran.append(shard.shard_id)
            on_done(shard)
    finally:
        for actor in idle + [a for _, _, a in running.values()]:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()
    return outcome
