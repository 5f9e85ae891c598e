"""Thin Prefect tasks around the stages: call one stage, track it, return the artifact path.

Every task shares one policy: cache key = input artifact hashes + config hash + code version
(``tasks.caching``), results persisted (small: a path), retries only for transient failures
(``tasks.policy``). Retry counts and timeouts come from the campaign config via ``with_options``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from mmupt import tracking
from mmupt.errors import NothingSurvivedError
from schemas.campaign import WORLD_BENCHMARKS, BenchmarkSpec, MixConfig, RoundWindow
from schemas.evaluate import EvalConfig
from schemas.ingest import IngestConfig
from schemas.model import TinyModelConfig
from schemas.premise import PremiseConfig
from schemas.records import NothingKept
from schemas.sft import SFTConfig
from schemas.synthesize import SynthesizeConfig
from schemas.train import TrainConfig
from schemas.world import WorldConfig
from tasks.caching import stage_cache_key, trust_finished
from tasks.policy import is_transient
from tasks.tracking import log_manifest, stage_run

STAGE_TASK = dict(
    cache_key_fn=stage_cache_key,
    persist_result=True,
    cache_result_in_memory=False,
    retry_condition_fn=is_transient,
    retry_delay_seconds=2,
)


@task(name="world", **STAGE_TASK)
@trust_finished
def world_task(config: WorldConfig, out_dir: Path, parent_run_id: str | None = None) -> str:
    """Generate the embedded world."""
    from stages.world import generate_world

    with stage_run("world", parent_run_id, config):
        log_manifest(generate_world(config, out_dir), "world")
    return str(out_dir)


@task(name="bootstrap-model", **STAGE_TASK)
@trust_finished
def bootstrap_task(
    world_dir: Path, config: TinyModelConfig, out_dir: Path, parent_run_id: str | None = None
) -> str:
    """Build the tiny starting model with a tokenizer trained on the world's text."""
    from stages.bootstrap import bootstrap_tiny_model

    with stage_run("bootstrap", parent_run_id, config):
        log_manifest(bootstrap_tiny_model(world_dir, config, out_dir), "bootstrap")
    return str(out_dir)  # the model is its model/ subdirectory


@task(name="sft", **STAGE_TASK)
@trust_finished
def sft_task(
    model_dir: Path, world_dir: Path, config: SFTConfig, out_dir: Path, parent_run_id: str | None = None
) -> str:
    """First SFT; returns the artifact directory (the model is its ``model/``)."""
    from stages.sft import run_sft

    with stage_run("sft", parent_run_id, config):
        # The campaign measures its start itself (round 0's baseline evaluation); the accuracy of
        # the untrained model before SFT is ~0 by construction and not worth its generation time.
        log_manifest(run_sft(model_dir, world_dir, out_dir, config, measure_before=False).manifest, "sft")
    return str(out_dir)


@task(name="ingest", **STAGE_TASK)
@trust_finished
def ingest_task(
    sources: list[Path],
    layout: str | None,
    config: IngestConfig,
    out_dir: Path,
    parent_run_id: str | None = None,
) -> str:
    """Validate and normalise the unlabeled data into a samples artifact."""
    from stages.ingest.run import run_ingest

    with stage_run("ingest", parent_run_id, config):
        log_manifest(run_ingest(sources, out_dir, config, layout=layout), "ingest")
    return str(out_dir)


@task(name="synthesize", **STAGE_TASK)
@trust_finished
def synthesize_task(
    samples_dir: Path,
    model_dir: Path,
    config: SynthesizeConfig,
    out_dir: Path,
    parent_run_id: str | None = None,
) -> str | NothingKept:
    """The model writes new questions about the samples' images.

    A model that writes no usable question is an expected outcome of a round, not a failure: the
    task completes with ``NothingKept`` (the reason) and the round trains on its originals.
    """
    from stages.synthesis.run import run_synthesize

    with stage_run("synthesize", parent_run_id, config) as active:
        try:
            log_manifest(run_synthesize(samples_dir, model_dir, out_dir, config), "synthesize")
        except NothingSurvivedError as err:
            if active is not None:
                tracking.describe_run(f"nothing kept: {err}")
            return NothingKept(reason=str(err))
    return str(out_dir)


@task(name="window", **STAGE_TASK)
@trust_finished
def window_task(
    samples_dir: Path, window: RoundWindow, out_dir: Path, parent_run_id: str | None = None
) -> str:
    """The round's original prompts: its window of the unlabeled pool (``prompts_per_round``)."""
    from stages.mix import run_window

    with stage_run("window", parent_run_id, window):
        log_manifest(run_window(samples_dir, window, out_dir), "window")
    return str(out_dir)


@task(name="mix", **STAGE_TASK)
@trust_finished
def mix_task(
    samples_dir: Path,
    synthetic_dir: Path | None,
    config: MixConfig,
    out_dir: Path,
    parent_run_id: str | None = None,
) -> str:
    """Mix original and synthetic questions into the round's training input."""
    from stages.mix import run_mix

    with stage_run("mix", parent_run_id, config):
        log_manifest(run_mix(samples_dir, synthetic_dir, config, out_dir), "mix")
    return str(out_dir)


@task(name="train", **STAGE_TASK)
@trust_finished
def train_task(
    samples_dir: Path, model_dir: Path, config: TrainConfig, out_dir: Path, parent_run_id: str | None = None
) -> str:
    """GRPO with majority-vote self-reward; per-step metrics go to the stage's MLflow run.

    A re-run after a crash continues an interrupted job from its last checkpoint, and reuses a job
    that finished with these inputs even when the orchestrator's cache record was lost.
    """
    from mmupt import tracking
    from stages.train.job import finished_run, interrupted_run, run_train

    finished = finished_run([samples_dir], model_dir, out_dir, config)
    if finished is not None:
        return str(out_dir)
    with stage_run("train", parent_run_id, config) as active:
        on_metrics = tracking.log_step if active else None
        if active:
            tracking.log_dataset(samples_dir, "training-prompts", context="training")
        resume = interrupted_run(out_dir)
        result = run_train([samples_dir], model_dir, out_dir, config, on_metrics=on_metrics, resume=resume)
        if result.manifest is not None:
            log_manifest(result.manifest, "train")
    return str(out_dir)


@task(name="evaluate", **STAGE_TASK)
@trust_finished
def evaluate_task(
    model_dir: Path,
    spec: BenchmarkSpec,
    data: Path,
    config: EvalConfig,
    out_dir: Path,
    parent_run_id: str | None = None,
) -> str:
    """Evaluate one benchmark; its scores land in the artifact's ``scores`` table."""
    from mmupt import tracking
    from stages.evaluation.run import run_evaluate

    config = config.model_copy(update={"limit": spec.limit}) if spec.limit else config
    with stage_run(f"evaluate-{spec.name}", parent_run_id, config) as active:
        if active and spec.name in WORLD_BENCHMARKS:
            dataset = {"world": "world-heldout"}.get(spec.name, spec.name)
            tracking.log_dataset(data, dataset, context="evaluation")
        log_manifest(run_evaluate(model_dir, spec.name, data, out_dir, config), f"eval/{spec.name}")
    return str(out_dir)


@task(name="premise", **STAGE_TASK)
@trust_finished
def premise_task(
    model_dir: Path,
    rows_source: Path,
    config: PremiseConfig,
    out_dir: Path,
    parent_run_id: str | None = None,
) -> str:
    """Measure majority@n vs greedy on labelled dev rows; the figures land in the manifest stats."""
    from mmupt import tracking
    from stages.premise import premise_metrics, run_premise

    with stage_run("premise", parent_run_id, config) as active:
        if active and Path(rows_source).is_dir():  # an artifact (a bare Parquet file has no content hash)
            tracking.log_dataset(rows_source, "premise-dev", context="premise")
        manifest = run_premise(model_dir, rows_source, config, out_dir)
        if active:
            tracking.log_metrics(premise_metrics(manifest.stats))
    return str(out_dir)
