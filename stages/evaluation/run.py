"""Entry points of the evaluation stage: generate-and-score, and re-score saved responses.

    run_evaluate(model_dir_or_engine, "mathvista", data_path, out_dir, config) -> Manifest
    run_score("mathvista", data_path, "responses.jsonl", out_dir, config)      -> Manifest

Both write one artifact (kind ``evaluate``) with tables ``predictions``, ``scores`` and
``rejects``, plus ``scores.json`` (overall and breakdowns) inside the artifact directory, so
``<out>/predictions.parquet`` and ``<out>/scores.json`` exist after either call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmupt.engine.base import Engine
from mmupt.errors import ConfigError, InputDataError
from mmupt.store import MANIFEST, ArtifactWriter, Manifest, artifact_hash, check_output_dir, file_sha256
from schemas.evaluate import EvalConfig
from stages.evaluation.loaders.common import Loaded
from stages.evaluation.parallel import score_all
from stages.evaluation.registry import Benchmark, get_benchmark
from stages.evaluation.report import predictions_table, rejects_table, scores_json, scores_table
from stages.evaluation.responses import read_responses
from stages.evaluation.types import EvalItem, LoadOptions, MetricRow, Verdict

logger = logging.getLogger(__name__)

KIND = "evaluate"
SCORES_JSON = "scores.json"
FIRST_FEW = 5


# ---------------------------------------------------------------------------- loading
def load_benchmark(bench: Benchmark, data_path: Path, config: EvalConfig, load_images: bool) -> Loaded:
    """Items of the configured split; when no split was set and the default one is absent,
    the only other published split present is used (and recorded in the stats)."""
    subsets = tuple(config.subsets) if config.subsets else None

    def attempt(split: str) -> Loaded:
        options = LoadOptions(split, subsets, config.limit, load_images, config.mathverse_query)
        return bench.load(Path(data_path), options)

    split = config.split or bench.default_split
    try:
        return attempt(split)
    except InputDataError:
        if config.split is not None or not Path(data_path).is_dir():
            raise
        for other in bench.splits:
            if other == split:
                continue
            try:
                loaded = attempt(other)
            except InputDataError:
                continue
            logger.warning(
                "%s: split %r not found in %s; using split %r", bench.name, split, data_path, other
            )
            return loaded
        raise


def _data_hash(loaded: Loaded) -> str:
    digest = hashlib.sha256()
    for path in loaded.files.files:
        if path.is_dir() and (path / MANIFEST).is_file():
            digest.update(artifact_hash(path).encode())
        elif path.is_file():
            digest.update(file_sha256(path).encode())
        else:
            digest.update(str(path).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- scoring + writing
def _note_counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    counts = Counter((v.note or "").split(":")[0] for v in verdicts if v.note)
    return dict(sorted(counts.items()))


def _judge(
    bench: Benchmark, items: list[EvalItem], responses: list[str], verdicts: list[Verdict], config: EvalConfig
) -> tuple[list[Verdict], dict[str, Any]]:
    if not config.judge.enabled or bench.name not in config.judge.benchmarks:
        return verdicts, {"used": False}
    from stages.evaluation.judge import JudgeClient

    client = JudgeClient(config.judge)
    judged = client.recheck(items, responses, verdicts)
    flipped = sum(a.correct != b.correct for a, b in zip(verdicts, judged, strict=True))
    return judged, {
        "used": True,
        "model": config.judge.model,
        "calls": client.calls,
        "failures": client.failures,
        "flipped": flipped,
    }


def score_and_write(
    bench: Benchmark,
    loaded: Loaded,
    items: list[EvalItem],
    responses: list[str],
    out_dir: Path,
    config: EvalConfig,
    *,
    inputs: dict[str, str],
    stats: dict[str, Any],
) -> Manifest:
    """Score (parallel, bounded), aggregate, and publish the artifact with scores.json inside."""
    started = time.perf_counter()
    verdicts = score_all(bench.score, items, responses, config.scoring)
    seconds = time.perf_counter() - started
    verdicts, judge_stats = _judge(bench, items, responses, verdicts, config)
    rows: list[MetricRow] = bench.aggregate(items, verdicts)
    notes = _note_counts(verdicts)
    stats.update(
        {
            "benchmark": bench.name,
            "split": loaded.split,
            "n_scored": len(items),
            "n_rejected": len(loaded.rejects),
            "reject_reasons": dict(Counter(r.reason for r in loaded.rejects)),
            "rejected_first": [f"{r.row}: {r.reason}: {r.detail}" for r in loaded.rejects[:FIRST_FEW]],
            "notes": notes,
            "timeouts": notes.get("timeout", 0),
            "scorer_errors": notes.get("scorer_error", 0),
            "scoring_seconds": round(seconds, 3),
            "responses_per_s": round(len(items) / seconds, 1) if seconds > 0 and items else None,
            "primary_metric": bench.primary_metric,
            "judge": judge_stats,
        }
    )
    if bench.extra_stats is not None:
        stats.update(bench.extra_stats(items, verdicts))
    if notes.get("scorer_error"):
        first = next(v.note for v in verdicts if v.note and v.note.startswith("scorer_error"))
        logger.warning(
            "%d response(s) hit a scorer error (scored wrong), first: %s", notes["scorer_error"], first
        )
    summary = scores_json(bench.name, bench.primary_metric, rows, stats)
    stats["overall"] = summary["overall"]
    with ArtifactWriter(
        out_dir, KIND, config=config, inputs=inputs, required=("predictions", "scores", "rejects")
    ) as writer:
        writer.write("predictions", predictions_table(bench.name, items, responses, verdicts))
        writer.write("scores", scores_table(bench.name, rows))
        writer.write("rejects", rejects_table(loaded.rejects))
        writer.stats.update(stats)
        (writer.workdir / SCORES_JSON).write_text(
            json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )
    assert writer.manifest is not None
    logger.info(
        "%s: %s = %s over %d items", bench.name, bench.primary_metric, summary["overall"], summary["n"]
    )
    return writer.manifest


# ---------------------------------------------------------------------------- entry points
def run_score(
    benchmark: str,
    data_path: str | Path,
    responses_path: str | Path,
    out_dir: str | Path,
    config: EvalConfig | None = None,
) -> Manifest:
    """Score saved responses (``id``, ``response``) against a benchmark's data, without a model.

    Response ids absent from the data are reported (count and first few) and not scored; data
    items without a response are counted and not scored; empty responses are scored wrong
    (note ``empty_response``).
    """
    config = config or EvalConfig()
    check_output_dir(out_dir, KIND, inputs=(data_path, responses_path))
    bench = get_benchmark(benchmark)
    loaded = load_benchmark(bench, Path(data_path), config, load_images=False)
    answers = read_responses(responses_path)
    known = {item.id for item in loaded.items}
    unknown = [key for key in answers.responses if key not in known]
    items = [item for item in loaded.items if item.id in answers.responses]
    if not items:
        raise InputDataError(
            f"{responses_path}: none of its {len(answers.responses)} response ids is an id of the {bench.name} data "
            f"(first response ids: {list(answers.responses)[:FIRST_FEW]}; first data ids: {[i.id for i in loaded.items[:FIRST_FEW]]})"
        )
    if unknown:
        logger.warning(
            "%d response id(s) are not in the %s data and are not scored, e.g. %s",
            len(unknown),
            bench.name,
            unknown[:FIRST_FEW],
        )
    stats: dict[str, Any] = {
        "mode": "score",
        "n_data_items": len(loaded.items),
        "n_without_response": len(loaded.items) - len(items),
        "unknown_ids": {"count": len(unknown), "first": unknown[:FIRST_FEW]},
        "duplicate_response_ids": {
            "count": len(answers.duplicate_ids),
            "first": answers.duplicate_ids[:FIRST_FEW],
        },
        "bad_response_rows": {"count": len(answers.bad_rows), "first": answers.bad_rows[:FIRST_FEW]},
    }
    inputs = {"data": _data_hash(loaded), "responses": file_sha256(Path(responses_path))}
    responses = [answers.responses[item.id] for item in items]
    return score_and_write(bench, loaded, items, responses, Path(out_dir), config, inputs=inputs, stats=stats)


def _engine_for(model: str | Path | Engine, config: EvalConfig) -> Engine:
    if not isinstance(model, str | Path):
        return model
    if config.engine.backend != "hf":
        raise ConfigError(
            f"engine.backend {config.engine.backend!r}: run_evaluate builds only the hf engine from a model "
            "directory; pass an engine object for other backends"
        )
    from mmupt.engine.hf import HFEngine  # torch is imported only when a model is actually run

    return HFEngine.from_pretrained(model, config.engine)


def run_evaluate(
    model: str | Path | Engine,
    benchmark: str,
    data_path: str | Path,
    out_dir: str | Path,
    config: EvalConfig | None = None,
) -> Manifest:
    """Ask every item with the shared reasoning prompt, one sample each, then score as ``run_score``."""
    from rich.console import Console
    from rich.progress import Progress

    config = config or EvalConfig()
    bench = get_benchmark(benchmark)
    loaded = load_benchmark(bench, Path(data_path), config, load_images=True)
    if not loaded.items:
        reasons = dict(Counter(r.reason for r in loaded.rejects))
        raise InputDataError(
            f"{data_path}: no evaluable {bench.name} items ({len(loaded.rejects)} rejected: {reasons})"
        )
    engine = _engine_for(model, config)
    responses: list[str] = []
    truncated = tokens = 0
    started = time.perf_counter()
    console = Console(stderr=True)
    # a live bar on a terminal only: elsewhere a transient bar leaves an empty line per use
    with Progress(transient=True, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"{bench.name}: generating", total=len(loaded.items))
        for start in range(0, len(loaded.items), config.generation_batch):
            batch = loaded.items[start : start + config.generation_batch]
            completions = engine.generate([bench.request(item) for item in batch], config.sampling)
            for samples in completions:
                first = samples[0]
                responses.append(first.text)
                truncated += first.finish_reason == "length"
                tokens += len(first.token_ids)
            progress.advance(task, len(batch))
    seconds = time.perf_counter() - started
    stats: dict[str, Any] = {
        "mode": "evaluate",
        "model_id": engine.model_id,
        "n_data_items": len(loaded.items),
        "generation_seconds": round(seconds, 3),
        "truncated_responses": truncated,
        "mean_response_tokens": round(tokens / len(loaded.items), 2),
        "sampling": config.sampling.model_dump(),
    }
    inputs = {"data": _data_hash(loaded), "model": str(engine.model_id)}
    return score_and_write(
        bench, loaded, loaded.items, responses, Path(out_dir), config, inputs=inputs, stats=stats
    )
