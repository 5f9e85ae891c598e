"""The driver: validate everything, launch the Ray TorchTrainer, relay progress, publish the artifact.

Everything that can be checked without a worker is checked here first (samples, model directory,
DeepSpeed JSON against the device, cluster resources, checkpoint compatibility on resume), so user
errors are one line in seconds. Workers stream one message per step through a Ray queue; the
driver turns each into ``on_metrics(step, metrics)`` and a console progress line. At the end the
job directory is published as one artifact (``mmupt.store``), see ``stages/train/__init__.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmupt.deepspeed_env import torch_extensions_dir
from mmupt.errors import ConfigError, MmuptError, TransientError
from mmupt.modeling.loader import check_model_dir
from mmupt.ray_local import on_private_cluster, private_cluster_callbacks, start_ray
from mmupt.store import (
    MANIFEST,
    ArtifactWriter,
    Manifest,
    artifact_hash,
    check_output_dir,
    config_hash,
    file_sha256,
    read_manifest,
    write_text_atomic,
)
from schemas.artifacts import ROLLOUTS
from schemas.layout import METRICS_FILE, MODEL_DIR
from schemas.metrics import (
    KL,
    LABEL_ACCURACY,
    REWARD_MEAN,
    STEP_TRAINED,
    VOTE_SHARE,
    VOTE_SKIPPED,
    timing_metric,
)
from schemas.train import TrainConfig
from stages.train import checkpoint
from stages.train.config import resolve_deepspeed
from stages.train.data import PromptSampler, load_prompts
from stages.train.teacher import TEACHER_FILE
from stages.train.worker import STEPS_DIR, JobSpec, run_local, train_loop_per_worker

log = logging.getLogger(__name__)

RAY_DIR = ".ray"  # Ray Train's run storage; not part of the artifact
NOT_CARRIED = {MANIFEST, "rollouts.parquet", RAY_DIR}
MetricsCallback = Callable[[int, dict[str, float]], None]


class TrainJobError(MmuptError):
    """The training job stopped (a worker failed, or no step had anything to train on)."""


class WorkerLostError(TrainJobError, TransientError):
    """A training worker's process died (killed, OOM, node lost): the code did not fail, so a retry
    resumes from the last checkpoint; a campaign's train task does that itself."""


# Ray's ways of saying "the worker process is gone", as opposed to an exception the training code
# raised. By name: Ray Train keeps its classes in a private module that moves between releases.
LOST_WORKER_ERRORS = {
    "WorkerHealthCheckFailedError",
    "WorkerHealthCheckTimeoutError",
    "ActorDiedError",
    "RayActorError",
    "ActorUnavailableError",
    "NodeDiedError",
    "WorkerCrashedError",
    "OutOfMemoryError",
}


@dataclass
class TrainResult:
    out_dir: Path
    model_dir: Path
    total_steps: int
    trained_steps: int
    skipped_steps: int
    resumed_from: int
    metrics: list[dict[str, float]] = field(default_factory=list)  # this session's steps
    manifest: Manifest | None = None
    seconds: float = 0.0


def run_train(
    samples_paths: list[str | Path] | str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig,
    on_metrics: MetricsCallback | None = None,
    *,
    resume: bool = False,
) -> TrainResult:
    """Train ``model_dir`` with GRPO on the prompts of ``samples_paths``; publish an artifact at ``out_dir``.

    ``resume``: continue from the newest DeepSpeed checkpoint in ``out_dir/checkpoints`` with the
    same data order (same seed, batch sizes and worker count are required).
    """
    started = time.perf_counter()
    paths = [samples_paths] if isinstance(samples_paths, str | Path) else list(samples_paths)
    paths = [Path(p).resolve() for p in paths]
    model_path = check_model_dir(Path(model_dir).resolve())
    out = Path(out_dir).resolve()

    # ---- everything that can fail fast, before Ray starts anything
    pool = load_prompts(paths)
    sampler = PromptSampler.for_pool(
        pool, config.data.prompts_per_step, config.data.synthetic_ratio, config.trainer.seed
    )
    sampler.check(", ".join(str(p) for p in paths))
    total_steps = sampler.total_steps(config.data.epochs, config.data.max_steps)
    deepspeed_config = resolve_deepspeed(config)
    n_prompts = len(pool)
    del pool  # workers load their own copy; the driver only needed to validate it
    start_step, counters = _prepare_out_dir(out, config, sampler, resume)

    spec = JobSpec(
        config=config.model_dump(mode="json"),
        deepspeed=deepspeed_config,
        samples_paths=[str(p) for p in paths],
        model_dir=str(model_path),
        out_dir=str(out),
        start_step=start_step,
        total_steps=total_steps,
        counters=counters,
    )
    log.info(
        "train: %d prompts, %d steps of %d prompts x %d responses, %d workers, resume from step %d",
        n_prompts,
        total_steps,
        config.data.prompts_per_step,
        config.rollout.n,
        config.trainer.num_workers,
        start_step,
    )
    metrics, done, phases = _launch(spec, config, out, on_metrics)
    if phases:
        log.info(
            "train phases: %s",
            ", ".join(f"{k.removeprefix('timing_s/')} {v:.0f}s" for k, v in phases.items()),
        )

    counters = done.get("counters", counters) if done else counters
    if not counters.get("trained_steps"):
        reasons = (
            ", ".join(f"{k} {v}" for k, v in sorted(counters.get("skip_reasons", {}).items()))
            or "none recorded"
        )
        message = (
            f"{out}: no step had a trainable group ({total_steps} steps; skipped groups by reason: {reasons}), so "
            f"the model was never updated; see {out / METRICS_FILE} and {out / STEPS_DIR}/: check that responses "
            "end in \\boxed{...} (e.g. SFT first), raise rollout.max_response_length or lower reward.vote.min_vote_ratio"
        )
        if config.trainer.on_no_update == "error":
            raise TrainJobError(message)
        log.warning("%s (trainer.on_no_update: warn: publishing the unchanged model)", message)
    manifest = _publish(out, config, paths, model_path, total_steps, start_step, counters, metrics, phases)
    return TrainResult(
        out_dir=out,
        model_dir=out / MODEL_DIR,
        total_steps=total_steps,
        trained_steps=int(counters["trained_steps"]),
        skipped_steps=int(counters.get("skipped_steps", 0)),
        resumed_from=start_step,
        metrics=metrics,
        manifest=manifest,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------- out dir and resume


def _prepare_out_dir(
    out: Path, config: TrainConfig, sampler: PromptSampler, resume: bool
) -> tuple[int, dict[str, Any]]:
    """(steps already done, counters); cleans records of steps after the resumed checkpoint."""
    ckpt_dir = out / checkpoint.CHECKPOINTS
    latest = checkpoint.latest_step(ckpt_dir)
    if not resume and latest is None and not (out / MANIFEST).exists():
        check_output_dir(out, "train")  # a fresh run publishes over the whole directory
    if not resume and (latest is not None or (out / MANIFEST).exists()):
        raise ConfigError(
            f"{out}: holds a training run already (checkpoints or a manifest): pass --resume to continue it, "
            "or choose a new --out"
        )
    start, counters = 0, {"trained_steps": 0, "skipped_steps": 0, "skip_reasons": {}}
    if resume and latest is not None:
        state = checkpoint.read_client_state(ckpt_dir, latest)
        if (
            state["sampler"]["fingerprint"] != sampler.fingerprint()
            or state["num_workers"] != config.trainer.num_workers
        ):
            raise ConfigError(
                f"{ckpt_dir}: the checkpoint of step {latest} was made with another data order or worker count "
                f"(samples, data.prompts_per_step, data.synthetic_ratio, trainer.seed, trainer.num_workers must "
                "match to resume): restore them, or start a new --out"
            )
        start, counters = latest, dict(state["counters"])
    elif resume:
        log.info("%s: no checkpoint to resume from; starting at step 1", ckpt_dir)
    out.mkdir(parents=True, exist_ok=True)
    _truncate_records(out, start)
    return start, counters


def _truncate_records(out: Path, last_step: int) -> None:
    """Forget metrics lines and rollout parts of steps after ``last_step`` (they will be redone)."""
    metrics = out / METRICS_FILE
    if metrics.exists():
        kept = [
            line
            for line in metrics.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= last_step
        ]
        write_text_atomic(metrics, "".join(line + "\n" for line in kept))
    parts = out / STEPS_DIR
    if parts.is_dir():
        for part in parts.glob("rollouts-*.parquet"):
            if int(part.stem.split("-")[1]) > last_step:
                part.unlink()
    shutil.rmtree(out / MODEL_DIR, ignore_errors=True)


# ---------------------------------------------------------------------------- Ray


def worker_env(config: TrainConfig) -> dict[str, str]:
    """Environment of every worker process (Ray runtime_env), set before deepspeed is imported."""
    env = {
        "TORCH_EXTENSIONS_DIR": torch_extensions_dir(),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "0"),
    }
    if not config.trainer.use_gpu:
        env["DS_ACCELERATOR"] = "cpu"  # DeepSpeed's CPU accelerator: gloo + shared-memory collectives
    return env


def _ensure_ray(config: TrainConfig) -> None:
    import ray

    trainer = config.trainer
    if not ray.is_initialized():
        start_ray(
            trainer.ray_address, max(2, trainer.num_workers * trainer.cpus_per_worker), worker_env(config)
        )
    _warm_train_coordinator()
    resources = ray.cluster_resources()
    need_cpu = trainer.num_workers * trainer.cpus_per_worker
    if resources.get("CPU", 0) < need_cpu:
        raise ConfigError(
            f"trainer: {trainer.num_workers} workers x {trainer.cpus_per_worker} CPUs need {need_cpu} CPUs but the "
            f"Ray cluster has {resources.get('CPU', 0):g}: lower trainer.num_workers or cpus_per_worker"
        )
    if trainer.use_gpu and resources.get("GPU", 0) < trainer.num_workers:
        raise ConfigError(
            f"trainer.use_gpu is true with {trainer.num_workers} workers but the Ray cluster has "
            f"{resources.get('GPU', 0):g} GPUs: set use_gpu: false (and a CPU DeepSpeed config) or add GPUs"
        )


def _warm_train_coordinator() -> None:
    """Start Ray Train's autoscaling-coordinator actor before the trainer asks for it.

    Why: Ray Train v2's controller sends its resource request to this (detached) actor with a
    5 s timeout; on a cold, busy node the actor is not up in time, so every job first waited 5-10 s
    and printed a GetTimeoutError traceback. Started here once per cluster, it answers at once.
    It is an internal Ray API, so any failure only means the old (slower) path.
    """
    import ray

    try:
        from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
            get_or_create_autoscaling_coordinator,
        )

        ray.get(get_or_create_autoscaling_coordinator().__ray_ready__.remote(), timeout=120)
    except Exception as err:  # noqa: BLE001 - an optimisation only
        log.debug("Ray Train coordinator not pre-started (%s)", err)


class JobPhases:
    """Wall seconds of a job's phases as the driver sees them: where a job's time goes besides steps.

    start-up (Ray workers, model load, DeepSpeed init), teacher (the frozen teacher's labelling),
    steps (first to last step), finish (final save and shutdown). Marked when rank 0's messages
    arrive, so each phase includes the message's (sub-second) transit.
    """

    def __init__(self) -> None:
        self.launched = time.perf_counter()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()

    def seconds(self) -> dict[str, float]:
        m, out = self.marks, {}
        if "ready" not in m:
            return out
        out[timing_metric("startup")] = m["ready"] - self.launched
        begin = m.get("teacher", m["ready"])
        if "teacher" in m:
            out[timing_metric("teacher")] = m["teacher"] - m["ready"]
        if "last_step" in m:
            out[timing_metric("steps")] = m["last_step"] - begin
            out[timing_metric("finish")] = m["end"] - m["last_step"]
        return out


def _launch(
    spec: JobSpec, config: TrainConfig, out: Path, on_metrics: MetricsCallback | None
) -> tuple[list[dict[str, float]], dict[str, Any] | None, dict[str, float]]:
    """Run the workers (Ray Train, or one local rank) and relay their progress on this thread.

    Returns the steps' metrics, the workers' final message and the job's phase timings."""
    phases = JobPhases()
    if config.trainer.launcher == "local":
        progress_queue: Any = queue.Queue()
        spec.queue = progress_queue
        fit: Callable[[], Any] = lambda: run_local(spec)  # noqa: E731
        empty: type[Exception] = queue.Empty
        cleanup: Callable[[], None] = lambda: None  # noqa: E731
    else:
        progress_queue, fit, empty, cleanup = _ray_trainer(spec, config, out)
    outcome: dict[str, BaseException | None] = {"error": None}

    def fit_and_keep_error() -> None:
        try:
            fit()
        except BaseException as err:  # noqa: BLE001 - re-raised on the driver thread below
            outcome["error"] = err

    thread = threading.Thread(target=fit_and_keep_error, name="mmupt-train-fit", daemon=True)
    thread.start()
    metrics: list[dict[str, float]] = []
    done: dict[str, Any] | None = None
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]train[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    # A live bar on a terminal; elsewhere (CI logs, a Prefect worker) the log lines below say the same.
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        task = progress.add_task("starting workers", total=spec.total_steps, completed=spec.start_step)
        while True:
            alive = thread.is_alive()
            try:
                message = progress_queue.get(timeout=0.5)
            except empty:
                if alive:
                    continue
                break
            if message["kind"] == "done":
                done = message
                continue
            if message["kind"] == "ready":
                phases.mark("ready")
                log.info("train: workers ready after %.0fs", phases.marks["ready"] - phases.launched)
                progress.update(task, description="workers ready")
                continue
            if message["kind"] == "teacher":
                phases.mark("teacher")
                log.info("frozen teacher: %s", ", ".join(f"{k} {v:.3f}" for k, v in message["stats"].items()))
                progress.update(task, description="frozen teacher labelled; training")
                continue
            step, values = message["step"], message["metrics"]
            phases.mark("last_step")
            metrics.append({"step": step, **values})
            progress.update(task, completed=step, description=_progress_line(values))
            log.info("step %d %s", step, _progress_line(values))
            if on_metrics is not None:
                on_metrics(step, values)
    thread.join()
    phases.mark("end")
    cleanup()
    if outcome["error"] is not None:
        raise _explain_failure(outcome["error"], out, metrics) from outcome["error"]
    return metrics, done, phases.seconds()


def _ray_trainer(
    spec: JobSpec, config: TrainConfig, out: Path
) -> tuple[Any, Callable[[], Any], type[Exception], Callable[[], None]]:
    """(progress queue, fit, the queue's Empty, cleanup) of a Ray Train job."""
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    _ensure_ray(config)
    progress_queue = Queue(actor_options={"num_cpus": 0})
    spec.queue = progress_queue
    trainer = _trainer_class(TorchTrainer)(
        train_loop_per_worker=train_loop_per_worker,
        train_loop_config=asdict(spec),
        scaling_config=ray.train.ScalingConfig(
            num_workers=config.trainer.num_workers,
            use_gpu=config.trainer.use_gpu,
            resources_per_worker={
                "CPU": config.trainer.cpus_per_worker,
                **({"GPU": 1} if config.trainer.use_gpu else {}),
            },
        ),
        torch_config=TorchConfig(backend="nccl" if config.trainer.use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            name=f"mmupt-train-{uuid.uuid4().hex[:8]}",
            storage_path=str(out / RAY_DIR),
            failure_config=ray.train.FailureConfig(max_failures=0),
        ),
    )

    def cleanup() -> None:
        with contextlib.suppress(Exception):  # best-effort cleanup of the queue actor
            ray.kill(progress_queue.actor)

    return progress_queue, trainer.fit, Empty, cleanup


def _trainer_class(base: type) -> type:
    """``base`` (Ray's TorchTrainer), without the placement-group cleaner on a private cluster."""
    if not on_private_cluster() or not hasattr(base, "_create_default_callbacks"):
        return base  # a user's cluster, or a Ray whose trainer builds its callbacks elsewhere

    class PrivateClusterTrainer(base):  # type: ignore[misc, valid-type]
        def _create_default_callbacks(self) -> list[Any]:
            return private_cluster_callbacks(super()._create_default_callbacks())

    return PrivateClusterTrainer


def _progress_line(m: dict[str, float]) -> str:
    """One step as plain text: it goes to the log (console, Prefect UI) as well as the progress bar."""
    parts = [
        f"reward {m.get(REWARD_MEAN, 0):.3f}",
        f"vote {m.get(VOTE_SHARE, 0):.2f}",
        f"skipped {m.get(VOTE_SKIPPED, 0):.0%}",
    ]
    if LABEL_ACCURACY in m:
        parts.append(f"label acc {m[LABEL_ACCURACY]:.2f}")
    if KL in m:
        parts.append(f"kl {m[KL]:.4f}")
    parts.append(f"{m.get(timing_metric('step'), 0):.1f}s/step")
    if not m.get(STEP_TRAINED):
        parts.append("no trainable group: update skipped")
    return "  ".join(parts)


def _explain_failure(err: BaseException, out: Path, metrics: list[dict[str, float]]) -> MmuptError:
    """One actionable line for a failed job; the worker's traceback goes to the log."""
    # Ray Train wraps each worker's exception (with its traceback text); unwrap to the user's exception.
    failures = list((getattr(err, "worker_failures", None) or {}).values()) or [err]
    exceptions = [getattr(f, "_base_exc", f) for f in failures]
    for exc in exceptions:
        if isinstance(exc, MmuptError):
            return exc  # a user error raised on a worker: already one actionable line
    log.error("training worker failed:\n%s", failures[0])
    last = metrics[-1]["step"] if metrics else None
    saved = checkpoint.latest_step(out / checkpoint.CHECKPOINTS)
    where = f"after step {last}" if last is not None else "before the first step finished"
    lines = [line for line in str(exceptions[0]).strip().splitlines() if line.strip()]
    reason = f"{type(exceptions[0]).__name__}: {lines[-1] if lines else ''}"
    if type(exceptions[0]).__name__ in LOST_WORKER_ERRORS:
        resume = f"checkpoint of step {saved} kept" if saved else "no checkpoint yet"
        return WorkerLostError(
            f"{out}: a training worker's process died {where}: {reason} ({resume}; a campaign retries "
            "the stage from it, `mmupt train` resumes with --resume)"
        )
    resume = (
        f"checkpoint of step {saved} kept: fix the cause and re-run with --resume"
        if saved
        else "no checkpoint yet"
    )
    return TrainJobError(f"{out}: training stopped {where}: {reason} ({resume})")


# ---------------------------------------------------------------------------- artifact
def _train_inputs(samples: list[Path], model_dir: Path) -> dict[str, str]:
    inputs = {f"samples:{p}": (artifact_hash(p) if p.is_dir() else file_sha256(p)) for p in samples}
    inputs["model"] = _model_identity(model_dir)
    return inputs


def finished_run(
    samples_paths: list[Path], model_dir: Path, out_dir: Path, config: TrainConfig
) -> Manifest | None:
    """The manifest of a finished job at ``out_dir`` with these very inputs and config, else None.

    Lets an orchestrator that lost its own cache record (killed right after the manifest was
    written) reuse the run instead of failing on "holds a training run already".
    """
    out = Path(out_dir)
    if not (out / MANIFEST).is_file():
        return None
    try:
        manifest = read_manifest(out)
    except MmuptError:
        return None
    samples = [Path(p).resolve() for p in samples_paths]
    if manifest.kind != "train" or manifest.config_hash != config_hash(config):
        return None
    return manifest if manifest.inputs == _train_inputs(samples, Path(model_dir).resolve()) else None


def interrupted_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a job that started and never published (a crash to resume).

    A job killed before its first checkpoint left only its own records (metrics lines, rollout
    parts, Ray's run storage): that is still a crash to resume (from step 1), not a folder of
    someone else's files, which a fresh run must refuse to write over.
    """
    out = Path(out_dir)
    if not out.is_dir() or (out / MANIFEST).is_file():
        return False
    if checkpoint.latest_step(out / checkpoint.CHECKPOINTS) is not None:
        return True
    entries = {
        child.name for child in out.iterdir() if not child.name.startswith(".tmp-")
    }  # half-written files
    return bool(entries) and entries <= JOB_FILES


JOB_FILES = frozenset({METRICS_FILE, STEPS_DIR, RAY_DIR, checkpoint.CHECKPOINTS, MODEL_DIR, TEACHER_FILE})
"""What a training job writes into its directory before it publishes."""


def _publish(
    out: Path,
    config: TrainConfig,
    samples: list[Path],
    model_dir: Path,
    total_steps: int,
    start_step: int,
    counters: dict[str, Any],
    metrics: list[dict[str, float]],
    phases: dict[str, float],
) -> Manifest:
    """Publish the job directory as one artifact: the consolidated rollouts table plus, carried over
    by hard links (no copy, and a crash here leaves the job directory untouched), the model,
    checkpoints, metrics.jsonl and anything else already in it (e.g. the CLI's mlflow.db)."""
    inputs = _train_inputs(samples, model_dir)
    final = metrics[-1] if metrics else {}
    with ArtifactWriter(
        out, "train", config=config, inputs=inputs, required=("rollouts",), owned=True
    ) as writer:
        for part in sorted((out / STEPS_DIR).glob("rollouts-*.parquet")):
            writer.write("rollouts", pq.read_table(part, schema=ROLLOUTS))
        for entry in sorted(out.iterdir()):
            if entry.name in NOT_CARRIED or entry.name.startswith(".tmp"):
                continue
            _link_tree(entry, writer.workdir / entry.name)
        writer.stats.update(
            {
                "total_steps": total_steps,
                "resumed_from": start_step,
                "trained_steps": counters["trained_steps"],
                "skipped_steps": counters.get("skipped_steps", 0),
                "skip_reasons": counters.get("skip_reasons", {}),
                "final_metrics": {k: v for k, v in final.items() if k != "step"},
                "phase_seconds": phases,
                "model_dir": MODEL_DIR,
                "reward": config.reward.kind,
                "teacher": config.reward.teacher if config.reward.kind == "majority_vote" else None,
                **({"teacher_stats": counters["teacher"]} if counters.get("teacher") else {}),
            }
        )
    assert writer.manifest is not None
    return writer.manifest


def _link_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _model_identity(model_dir: Path) -> str:
    """The input model's identity for the manifest: its artifact's hash, else a hash of its weights."""
    if (model_dir.parent / MANIFEST).is_file():
        return artifact_hash(model_dir.parent)
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]:
        digest.update(f"{path.name}:{file_sha256(path)}".encode())
    return digest.hexdigest()
