"""Prefect flows: one UPT round, and the continual campaign that repeats it.

    round k:  [window k of the pool ->] synthesize (model k) -> mix -> train (seed + k - 1)
              -> evaluate -> gate
    campaign: round 0 (bootstrap + ingest + premise check + baseline evaluation), then rounds 1..N;
              round k+1 starts from the promoted model of round k; stop after N rounds, on collapse,
              or after M rejected rounds in a row. A failed premise (majority@n no better than
              greedy on the dev rows) stops the campaign after round 0 when ``require_premise``.

Every stage is a task in ``tasks/stages.py`` (cached by input hashes + config + code version), so a
re-run of a finished campaign skips every finished stage, and a crashed one resumes from its last
finished stage. MLflow: parent run per campaign (round metrics at ``step=k``), child run per round,
nested run per stage (``tasks/tracking.py``); the promoted model carries the alias ``champion``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.locking import campaign_lock
from flows.preflight import check_inputs
from mmupt import tracking
from mmupt.errors import PremiseFailedError
from mmupt.store import read_manifest, write_text_atomic
from mmupt.timing import PhaseTimer
from schemas import metrics
from schemas.campaign import WORLD_BENCHMARKS, CampaignConfig, MixConfig
from schemas.layout import METRICS_FILE, CampaignLayout, RoundLayout, model_in
from schemas.premise import HOLDS
from schemas.records import NothingKept, RoundRecord
from stages.campaign_state import CampaignState
from stages.compare import compare_campaign, comparison_rows, plot_comparison, plot_training_curves
from stages.gate import decide_round, read_train_metrics, suite_scores
from stages.premise import premise_figures, premise_record, premise_verdict, stop_message
from tasks.caching import output_ready
from tasks.reporting import publish_comparison, publish_round_report
from tasks.stages import (
    bootstrap_task,
    evaluate_task,
    ingest_task,
    mix_task,
    premise_task,
    sft_task,
    synthesize_task,
    train_task,
    window_task,
    world_task,
)
from tasks.tracking import prefect_ids


def run_stage(task_fn: Any, config: CampaignConfig, out_dir: Path, *args: Any, **kwargs: Any) -> Path:
    """Run one stage task with the campaign's retry/timeout policy; refresh its cache if the output is gone."""
    return Path(run_stage_outcome(task_fn, config, out_dir, *args, **kwargs))


def run_stage_outcome(task_fn: Any, config: CampaignConfig, out_dir: Path, *args: Any, **kwargs: Any) -> Any:
    """``run_stage`` for a task whose result is not always an artifact path (synthesis: ``NothingKept``)."""
    configured = task_fn.with_options(
        retries=config.stage_retries,
        timeout_seconds=config.stage_timeout_s,
        refresh_cache=not output_ready(out_dir),
    )
    return configured(*args, out_dir=out_dir, **kwargs)


def evaluate_suite(
    config: CampaignConfig, model_dir: Path, world_dir: Path | None, where: RoundLayout, run_id: str | None
) -> dict[str, Path]:
    out = {}
    for spec in config.benchmarks:
        data = world_dir if spec.name in WORLD_BENCHMARKS else spec.data
        out[spec.name] = run_stage(
            evaluate_task,
            config,
            where.evaluation(spec.name),
            model_dir,
            spec,
            data,
            config.evaluate,
            parent_run_id=run_id,
        )
    return out


def round_metrics(record: RoundRecord) -> dict[str, float]:
    """What the campaign run logs at ``step=k`` for round k: its scores, training signals, the gate,
    and the premise of its starting model when the round re-checked it (``premise.recheck``)."""
    return {
        **{metrics.eval_metric(n): v for n, v in record.scores.items()},
        **record.signals,
        metrics.GATE_PROMOTED: float(record.promote),
        **(premise_figures(record.premise) if record.premise else {}),
    }


def write_decision(where: RoundLayout, record: RoundRecord) -> None:
    """``round-k/decision.json``: the round's record, as the summary and ``mmupt compare`` read it."""
    write_text_atomic(where.decision, record.stored_in(where.dir.parent).model_dump_json(indent=2))


def round_tags(campaign_dir: Path, round_index: int) -> dict[str, str]:
    """What identifies a round's MLflow run across re-runs of the campaign."""
    return {
        tracking.ROLE_TAG: "round",
        tracking.CAMPAIGN_DIR_TAG: str(Path(campaign_dir).resolve()),
        "round": str(round_index),
    }


@flow(name="mmupt-round", log_prints=True, flow_run_name="{config.name}-round-{round_index}")
def round_flow(
    config: CampaignConfig,
    campaign_dir: Path,
    round_index: int,
    model_dir: Path,
    samples_dir: Path,
    world_dir: Path | None,
    champion_scores: dict[str, float],
    probe_history: list[float],
    parent_run_id: str | None = None,
) -> RoundRecord:
    """One round: [premise re-check ->] [window ->] synthesize -> mix -> train -> evaluate -> gate."""
    where = CampaignLayout(campaign_dir).round(round_index)
    timer = PhaseTimer()
    with tracking.run(
        where.run_name,
        params=round_params(config, round_index, model_dir),
        parent_run_id=parent_run_id,
        tags=prefect_ids(),
        reuse=round_tags(campaign_dir, round_index),
    ) as active:
        run_id = active.info.run_id
        with timer("premise"):
            premise = recheck_premise(config, round_index, model_dir, world_dir, where, run_id)
        if premise is not None and premise[HOLDS] == 0.0 and config.premise.recheck == "stop":
            return stop_untrained(where, model_dir, premise, timer, run_id)
        if (window := config.round_window(round_index)) is not None:  # the round's own prompts
            with timer("window"):
                samples_dir = run_stage(
                    window_task, config, where.window, samples_dir, window, parent_run_id=run_id
                )
        with timer("synthesize"):
            synthetic, ratio, synthesis_note = synthesize_or_originals(
                config, where, samples_dir, model_dir, run_id
            )
        with timer("mix"):
            mix = MixConfig(ratio=ratio, seed=config.train.trainer.seed + round_index)
            mixed = run_stage(mix_task, config, where.mix, samples_dir, synthetic, mix, parent_run_id=run_id)
        with timer("train"):
            train = config.round_train(round_index)
            trained = run_stage(
                train_task, config, where.train, mixed, model_dir, train, parent_run_id=run_id
            )
        with timer("evaluate"):
            evals = evaluate_suite(config, model_in(trained), world_dir, where, run_id)
        record = decide_round(
            round_index,
            model_in(trained),
            suite_scores(evals, config.benchmarks),
            champion_scores,
            read_train_metrics(trained),
            probe_history,
            config.gate,
            config.collapse,
            timings=timer.metrics(),
            synthesis_note=synthesis_note,
            mlflow_run_id=run_id,
            premise=premise,
        )
        publish_round(record, config, where, trained)
    return record


def round_params(config: CampaignConfig, round_index: int, model_dir: Path) -> dict[str, Any]:
    """The few parameters that tell one round's MLflow run from another's."""
    return {
        "round": round_index,
        "start_model": str(model_dir),
        "train_seed": config.round_train(round_index).trainer.seed,
        "window": str(config.round_window(round_index) or "whole pool"),
    }


def stop_untrained(
    where: RoundLayout, model_dir: Path, premise: dict[str, Any], timer: PhaseTimer, run_id: str
) -> RoundRecord:
    """Record, log and return a round its premise check stopped before training (``recheck: stop``)."""
    record = untrained_round(where.index, model_dir, premise, timer.metrics(), run_id)
    write_decision(where, record)
    tracking.log_metrics({**round_metrics(record), **record.timings})
    get_run_logger().warning("round %d: %s", where.index, record.decision)
    tracking.describe_run(f"Round {where.index}: {record.decision}")
    return record


def synthesize_or_originals(
    config: CampaignConfig, where: RoundLayout, samples_dir: Path, model_dir: Path, run_id: str | None
) -> tuple[Path | None, float, str | None]:
    """The round's synthetic questions and their share of the mix; (None, 0, why) when there are none.

    A model that writes no usable question this round still trains on the originals.
    """
    ratio = config.synthesize.synthetic_ratio if config.synthesize is not None else 0.0
    if ratio <= 0:
        return None, 0.0, None
    synthesized = run_stage_outcome(
        synthesize_task,
        config,
        where.synthesize,
        samples_dir,
        model_dir,
        config.synthesize,
        parent_run_id=run_id,
    )
    if isinstance(synthesized, NothingKept):
        note = f"synthesis kept nothing, trained on originals only: {synthesized.reason}"
        get_run_logger().warning(note)
        return None, 0.0, note
    return Path(synthesized), ratio, None


def publish_round(record: RoundRecord, config: CampaignConfig, where: RoundLayout, train_dir: Path) -> None:
    """Make a trained round's decision visible: decision.json, the round's MLflow run (metrics, curves,
    description), the model registry (every round a version; the champion alias only on promotion),
    the log and the Prefect report."""
    write_decision(where, record)
    tracking.log_metrics({**round_metrics(record), **record.timings})
    curves = plot_training_curves(train_dir / METRICS_FILE, where.training_curves)
    if curves is not None:
        tracking.log_figure(curves)
    tracking.register_model(
        Path(record.model_dir),
        f"{config.name}-model",
        alias="champion" if record.promote else None,
        mode=config.model_registry,
        tags={
            "round": str(record.round),
            "gate": record.outcome,
            **{metrics.eval_metric(k): f"{v:.4f}" for k, v in record.scores.items()},
        },
    )
    collapse = f"; collapse: {record.collapse}" if record.collapse else ""
    get_run_logger().info("round %d: %s%s", record.round, record.decision, collapse)
    tracking.describe_run(f"Round {record.round}: {record.outcome}: {record.decision}{collapse}")
    publish_round_report(record, config)


def recheck_premise(
    config: CampaignConfig,
    round_index: int,
    model_dir: Path,
    world_dir: Path | None,
    where: RoundLayout,
    run_id: str,
) -> dict[str, Any] | None:
    """Round ``round_index``'s premise check of its starting model (``premise.recheck``), or None.

    Round 1 starts from the model round 0 measured, so the check starts at round 2. After a
    promoted round the starting model has learned its teacher's votes: whether the next votes still
    beat its greedy answers is exactly what the continual study found to fail first.
    """
    if config.premise is None or config.premise.recheck == "never" or round_index < 2:
        return None
    return premise_check(config, model_dir, world_dir, where, run_id)


def untrained_round(
    round_index: int, model_dir: Path, premise: dict[str, Any], timings: dict[str, float], run_id: str
) -> RoundRecord:
    """The record of a round stopped by its premise check before it trained (``premise.recheck: stop``)."""
    return RoundRecord(
        round=round_index,
        model_dir=str(model_dir),
        promote=False,
        decision=f"not trained: the premise of its starting model failed: {premise['verdict']}",
        timings=timings,
        mlflow_run_id=run_id,
        premise=premise,
        premise_spent=True,
    )


def bootstrap_round(
    config: CampaignConfig, campaign_dir: Path, run_id: str
) -> tuple[Path, Path, Path | None]:
    """Round 0: the starting model (embedded: world -> tiny model -> first SFT) and the ingested samples."""
    where = CampaignLayout(campaign_dir).baseline
    world_dir = None
    if config.embedded is not None:
        embedded = config.embedded
        world_dir = run_stage(world_task, config, where.world, embedded.world, parent_run_id=run_id)
        base = run_stage(
            bootstrap_task, config, where.base_model, world_dir, embedded.model, parent_run_id=run_id
        )
        sft = run_stage(
            sft_task, config, where.sft, model_in(base), world_dir, embedded.sft, parent_run_id=run_id
        )
        model_dir = model_in(sft)
        sources, layout = [world_dir], "world"
        ingest_config = config.ingest.model_copy(update={"splits": ["unlabeled"]})
    else:
        assert config.start_model is not None  # enforced by CampaignConfig
        model_dir = config.start_model
        sources = [p for source in config.sources for p in source.paths]
        layout = config.sources[0].layout if len({s.layout for s in config.sources}) == 1 else None
        ingest_config = config.ingest
    samples = run_stage(
        ingest_task, config, where.ingest, sources, layout, ingest_config, parent_run_id=run_id
    )
    return model_dir, samples, world_dir


def premise_check(
    config: CampaignConfig, model_dir: Path, world_dir: Path | None, where: RoundLayout, run_id: str
) -> dict[str, Any] | None:
    """Round 0's premise check (majority@n vs greedy on labelled dev rows); its record, or None if skipped.

    The rows are ``premise.data`` when set, else the embedded world's ``premise.split``. The verdict
    is recomputed from the artifact's figures with the current ``min_gain``, so changing it (or
    ``require_premise``) never re-runs the measurement.
    """
    logger = get_run_logger()
    premise = config.premise
    if premise is None:
        return None
    source = premise.data if premise.data is not None else world_dir
    if source is None:
        logger.info(
            "premise check skipped: no labelled dev set (set premise.data to a samples artifact or Parquet "
            "with oracle_answer to measure majority@n vs greedy before training)"
        )
        return None
    out = run_stage(
        premise_task, config, where.premise, model_dir, Path(source), premise, parent_run_id=run_id
    )
    record = premise_record(read_manifest(out).stats, premise)
    if record["verdict"] is not None:
        logger.warning(record["verdict"])
    else:
        logger.info("premise holds: %s", record["summary"])
    return record


def baseline_round(
    config: CampaignConfig, campaign_dir: Path, parent_id: str
) -> tuple[RoundRecord, Path, Path | None]:
    """Round 0 in its own MLflow run: the starting model and samples (``bootstrap_round``), its
    premise check, its evaluation (metrics, the registry's first ``champion``), then ``decision.json``
    and the campaign run's step 0. Returns the baseline record, the samples and the world (or None)."""
    where = CampaignLayout(campaign_dir).baseline
    with tracking.run(
        where.run_name, parent_run_id=parent_id, tags=prefect_ids(), reuse=round_tags(campaign_dir, 0)
    ) as r0:
        model_dir, samples, world_dir = bootstrap_round(config, campaign_dir, r0.info.run_id)
        # Before the baseline evaluation, so a failed premise is reported at once.
        premise = premise_check(config, model_dir, world_dir, where, r0.info.run_id)
        evals = evaluate_suite(config, model_dir, world_dir, where, r0.info.run_id)
        scores = suite_scores(evals, config.benchmarks)
        tracking.log_metrics(baseline_metrics(scores, premise))
        tracking.register_model(
            model_dir,
            f"{config.name}-model",
            alias="champion",
            mode=config.model_registry,
            tags={"round": "0", "gate": "baseline"},
        )
    stopped = stop_message(premise, config.premise) is not None
    baseline = RoundRecord(
        round=0,
        model_dir=str(model_dir),
        scores=scores,
        promote=True,
        decision="baseline; premise failed, campaign stopped" if stopped else "baseline",
        premise=premise,
    )
    write_decision(where, baseline)
    tracking.log_metrics(baseline_metrics(scores, premise), step=0)
    return baseline, samples, world_dir


def baseline_metrics(scores: dict[str, float], premise: dict[str, Any] | None) -> dict[str, float]:
    """What round 0 logs (its run, and the campaign run at ``step=0``): its scores and premise figures."""
    return {
        **{metrics.eval_metric(k): v for k, v in scores.items()},
        **(premise_figures(premise) if premise is not None else {}),
    }


@contextmanager
def campaign_run(config: CampaignConfig, campaign_dir: Path, /, **options: Any) -> Iterator[str]:
    """The campaign's MLflow run (the same one on every re-run, found by tag), after closing the runs a
    crash left open; yields its id. ``options``: ``tracking.run``'s params, config and tags."""
    tracking.use_campaign(campaign_dir, config.name)
    tracking.close_interrupted_runs(campaign_dir)
    reuse = {tracking.ROLE_TAG: "campaign", tracking.CAMPAIGN_DIR_TAG: str(campaign_dir)}
    with tracking.run("campaign", reuse=reuse, **options) as parent:
        yield parent.info.run_id


def write_summary(
    config: CampaignConfig, out_dir: Path, state: CampaignState, stop_reason: str, parent_id: str
) -> dict[str, Any]:
    """``campaign.summary.json`` and the comparison plot on the campaign run."""
    champion, champion_scores = Path(state.champion.model_dir), state.champion.scores
    summary = {
        "campaign": config.name,
        "champion": str(champion),
        "champion_scores": champion_scores,
        "stop_reason": stop_reason,
        "premise": state.history[0].premise,
        "rounds": [r.stored_in(out_dir).model_dump(mode="json") for r in state.history],
        "mlflow_run_id": parent_id,
        "tracking_uri": tracking.tracking_uri(out_dir),
    }
    layout = CampaignLayout(out_dir)
    write_text_atomic(layout.summary, json.dumps(summary, indent=2, sort_keys=True))
    scores = ", ".join(f"{k} {v:.3f}" for k, v in sorted(champion_scores.items()))
    tracking.describe_run(f"Campaign {config.name}: {stop_reason}. Champion: {champion} ({scores}).")
    comparison = compare_campaign(out_dir)
    tracking.log_figure(plot_comparison(comparison, layout.comparison_png))
    header, rows = comparison_rows(comparison)
    tracking.log_comparison_table(header, rows)
    publish_comparison(header, rows, config)
    return summary


def next_round(
    config: CampaignConfig,
    campaign_dir: Path,
    round_index: int,
    state: CampaignState,
    samples_dir: Path,
    world_dir: Path | None,
    parent_id: str,
) -> RoundRecord:
    """Round ``round_index`` from ``state``'s champion, against its scores and probe history; the
    campaign run charts the round at ``step=round_index``."""
    start = state.champion
    record = round_flow(
        config,
        campaign_dir,
        round_index,
        Path(start.model_dir),
        samples_dir,
        world_dir,
        start.scores,
        state.probe_history,
        parent_run_id=parent_id,
    )
    tracking.log_metrics(round_metrics(record), step=round_index)
    return record


@flow(name="mmupt-campaign", log_prints=True, flow_run_name="{config.name}-campaign")
def campaign_flow(config: CampaignConfig, out_dir: Path) -> dict[str, Any]:
    """Continual self-improvement: baseline round 0, then up to ``config.rounds`` UPT rounds."""
    out_dir = Path(out_dir).resolve()
    check_inputs(config)
    tags = {**prefect_ids(), "campaign": config.name}
    with (
        campaign_lock(out_dir, config),
        campaign_run(config, out_dir, params=config.key_params(), config=config, tags=tags) as parent_id,
    ):
        baseline, samples, world_dir = baseline_round(config, out_dir, parent_id)
        state = CampaignState(config.gate, [baseline])
        if (stop := stop_message(baseline.premise, config.premise)) is not None:
            failed = f"premise failed: {baseline.premise['verdict']}"
            write_summary(config, out_dir, state, f"stopped after round 0: {failed}", parent_id)
            raise PremiseFailedError(stop)
        stop_reason = f"finished {config.rounds} rounds"
        for k in range(1, config.rounds + 1):
            record = next_round(config, out_dir, k, state, samples, world_dir, parent_id)
            if (why := state.advance(record)) is not None:
                stop_reason = f"stopped after round {k}: {why}"
                break
        summary = write_summary(config, out_dir, state, stop_reason, parent_id)
        get_run_logger().info("campaign %s: %s; champion %s", config.name, stop_reason, summary["champion"])
    return summary


def continue_campaign(config: CampaignConfig, out_dir: Path, round_index: int | None = None) -> RoundRecord:
    """Run round ``round_index`` of an existing campaign, or its next round (None), and update its summary.

    The round starts from the champion before it (finished stages are cached). The next round is
    refused when the campaign has stopped (collapse, or ``max_consecutive_rejections`` rejected
    rounds): a nightly schedule must not train on after the gate said stop. An explicit
    ``round_index`` always runs (re-running a round after a crash, or overriding the stop).
    ``campaign.summary.json`` and the campaign's MLflow run (metrics at ``step=k``) then hold the
    round, so the next call continues from it.
    """
    from mmupt.errors import CampaignStoppedError, MmuptError

    out_dir = Path(out_dir).resolve()
    layout = CampaignLayout(out_dir)
    if not layout.summary.is_file():
        raise MmuptError(f"{out_dir}: no campaign.summary.json; run `mmupt campaign` first")
    summary = json.loads(layout.summary.read_text(encoding="utf-8"))
    campaign = CampaignState.from_summary(summary, out_dir, config.gate)
    if round_index is None:
        round_index = campaign.last_round + 1
        if (why := campaign.stop_reason) is not None:
            raise CampaignStoppedError(
                f"{out_dir}: campaign {config.name!r} stopped after round {round_index - 1}: {why}; "
                f"run `mmupt round --round {round_index}` to train one more round anyway, or start a new "
                "campaign from its champion"
            )
    if round_index < 1:
        raise MmuptError(f"--round must be >= 1 (round 0 is the baseline), got {round_index}")
    premise = summary.get("premise")
    if premise is not None and config.premise is not None:
        # The same stop rule as the campaign, under the current min_gain / require_premise.
        record = {**premise, "verdict": premise_verdict(premise, config.premise)}
        if (stop := stop_message(record, config.premise)) is not None:
            raise PremiseFailedError(stop)
    if not campaign.has_baseline:
        raise MmuptError(f"{out_dir}: the campaign has no finished round 0; run `mmupt campaign` first")
    start, baseline = campaign.before(round_index), layout.baseline
    with (
        campaign_lock(out_dir, config),
        campaign_run(config, out_dir, tags={"campaign": config.name}) as parent_id,
    ):
        world_dir = baseline.world if baseline.world.is_dir() else None
        record = next_round(config, out_dir, round_index, start, baseline.ingest, world_dir, parent_id)
        after = campaign.with_round(record)
        why = after.stop_reason
        stop_reason = f"round {round_index} run on its own" + (f"; stopped: {why}" if why else "")
        write_summary(config, out_dir, after, stop_reason, parent_id)
    return record
