"""The premise check: is the majority vote of n samples right more often than the greedy answer?

MM-UPT's self-reward takes the majority answer of n sampled responses as the pseudo-label and
rewards agreement with it. Training can only distil something when that vote is a better label
than what the model already says (its greedy answer); when it is not, self-reward just sharpens
the model's own answers and drifts towards collapse (``benchmarks/REPORT.md``). This stage
measures the premise on labelled dev rows, without training anything:

- ``greedy`` (T=0), ``sample`` (mean accuracy of one sample at T), ``majority`` (the pseudo-label
  as training sees it: a tie gives none and counts as wrong), ``majority_tie_split`` (ties broken
  at random), ``pass_at_n`` (gold among the samples), ``winner_share`` (mean share of the winner),
  overall and per task (metric names in ``schemas.premise``);
- precision of the pseudo-label by vote-share bin, next to greedy accuracy on the same prompts
  (a confident vote is only worth distilling where greedy is wrong).

``run_premise`` writes them as an artifact (tables ``premise`` and ``premise_bins``, the figures in
the manifest stats); ``premise_verdict`` turns the figures into the campaign's stop rule.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmupt.answers import answers_equivalent, extract_answer
from mmupt.engine.base import Engine, GenerationRequest
from mmupt.errors import InputDataError
from mmupt.store import (
    MANIFEST,
    Manifest,
    artifact_hash,
    file_sha256,
    read_manifest,
    read_table,
    read_user_parquet,
    write_artifact,
)
from schemas.artifacts import schema_for
from schemas.engine import SamplingParams
from schemas.premise import (
    FIGURES,
    GAIN,
    GREEDY,
    HOLDS,
    MAJORITY,
    MAJORITY_TIE_SPLIT,
    PASS_AT_N,
    ROWS,
    SAMPLE,
    WINNER_SHARE,
    PremiseConfig,
    column,
)
from schemas.vote import VoteConfig
from stages.vote import vote_group

logger = logging.getLogger(__name__)

KIND = "premise"
ALL_TASKS = "all"
"""The ``task`` of the overall row of the ``premise`` table (and of rows with no task of their own)."""
SHARE_BINS: tuple[float, ...] = (0.0, 0.5, 0.625, 0.75, 0.875, 1.0)
"""Vote-share bin edges (the last bin includes 1.0): 8 votes fall into 4/8, 5/8, 6/8, 7/8, 8/8."""
GENERATION_CHUNK = 32
"""Rows per ``engine.generate`` call (progress granularity; fixed, so sampling stays reproducible)."""
VOTE = VoteConfig(min_vote_ratio=0.0, share_of="all")  # a winner share over all n samples
"""Training's vote with no agreement threshold: only a tie (or no valid answer) leaves a row unlabelled."""
LABEL_COLUMNS = ("id", "problem", "images", "answer", "task")


# ---------------------------------------------------------------------------- labelled rows
@dataclass(frozen=True)
class LabelledRows:
    table: pa.Table  # id, problem, images, answer, task
    split: str | None  # the world split the rows came from; None for a samples source
    where: str  # the file the rows came from, for messages


def labelled_rows(source: str | Path, split: str = "dev", limit: int | None = None) -> LabelledRows:
    """``id, problem, images, answer, task`` rows to measure on (the first ``limit`` labelled ones).

    ``source`` is a world artifact or world Parquet (rows of ``split``, labels in ``answer``), or a
    samples artifact / Parquet whose labels are in ``oracle_answer`` (task from the row's metadata
    ``task`` when there is one, else "all"). Unlabelled rows are skipped; none labelled is an error.
    """
    path = Path(source)
    table, label_column, where = _read_source(path, split)
    world = label_column == "answer"
    missing = [c for c in ("id", "problem", "images") if c not in table.column_names]
    if missing:
        raise InputDataError(
            f"{where}: missing column(s) {missing}; the premise check needs id, problem, images and "
            "labels in oracle_answer (the SAMPLES schema in schemas/artifacts.py)"
        )
    if label_column not in table.column_names:
        raise InputDataError(
            f"{where}: no `{label_column}` column, so no labels; the premise check needs a labelled dev "
            f"set (ingest one whose answers land in `{label_column}`), or set `premise: null` to skip it"
        )
    labelled = table.filter(pc.is_valid(table[label_column]))
    if labelled.num_rows == 0:
        raise InputDataError(
            f"{where}: none of its {table.num_rows} rows has a label in `{label_column}`; the premise check "
            f"needs a labelled dev set (ingest one whose answers land in `{label_column}`), or set "
            "`premise: null` to skip it"
        )
    if labelled.num_rows < table.num_rows:
        logger.info(
            "premise: %d of %d rows of %s have no label; skipped",
            table.num_rows - labelled.num_rows,
            table.num_rows,
            where,
        )
    if limit is not None:
        labelled = labelled.slice(0, limit)
    tasks = labelled["task"].to_pylist() if "task" in labelled.column_names else _metadata_tasks(labelled)
    rows = pa.table(
        {
            "id": labelled["id"].cast(pa.string()),
            "problem": labelled["problem"],
            "images": labelled["images"],
            "answer": pc.utf8_trim_whitespace(labelled[label_column].cast(pa.string())),
            "task": pa.array([t if t else ALL_TASKS for t in tasks], pa.string()),
        }
    )
    return LabelledRows(rows, split if world else None, where)


def _read_source(path: Path, split: str) -> tuple[pa.Table, str, str]:
    """(table, label column, where to point errors at) for any supported source."""
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise InputDataError(
                f"{path}: not an artifact (no {MANIFEST}); pass a world or samples artifact, or a Parquet file"
            )
        tables = read_manifest(path).tables
        if "world" in tables:
            return _world_split(read_table(path, "world"), split, path / "world.parquet"), "answer", f"{path}"
        if "samples" in tables:
            return read_table(path, "samples"), "oracle_answer", str(path / "samples.parquet")
        raise InputDataError(
            f"{path}: artifact has no world or samples table (it has {sorted(tables)}); pass a labelled dev set"
        )
    if not path.is_file():
        raise InputDataError(
            f"{path}: labelled dev set not found (pass an artifact directory or a Parquet file)"
        )
    table = read_user_parquet(path)
    if "oracle_answer" not in table.column_names and {"split", "answer"} <= set(table.column_names):
        return _world_split(table, split, path), "answer", str(path)  # a bare world.parquet
    return table, "oracle_answer", str(path)


def _world_split(table: pa.Table, split: str, where: Path) -> pa.Table:
    rows = table.filter(pc.equal(table["split"], split))
    if rows.num_rows == 0:
        raise InputDataError(
            f"{where}: the world has no rows in split {split!r}; regenerate it with n_{split} > 0 "
            "or set premise.split to a labelled split"
        )
    return rows


def _metadata_tasks(table: pa.Table) -> list[str | None]:
    if "metadata" not in table.column_names:
        return [None] * table.num_rows
    tasks: list[str | None] = []
    for raw in table["metadata"].to_pylist():
        try:
            meta = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            meta = {}
        task = meta.get("task") if isinstance(meta, dict) else None
        tasks.append(str(task) if task is not None else None)
    return tasks


# ---------------------------------------------------------------------------- scoring (pure)
@dataclass(frozen=True)
class RowOutcome:
    """What one labelled row says about the premise."""

    task: str
    greedy: bool
    sample: float  # share of the n samples that are right
    majority: bool  # the pseudo-label exists (no tie) and is right
    majority_tie_split: float
    pass_at_n: bool
    winner_share: float
    labelled: bool  # the vote gave a pseudo-label (as training would)


def _correct(answer: str | None, gold: str) -> bool:
    return answer is not None and answers_equivalent(answer, gold)


def tie_split_credit(classes: Mapping[str, int], gold: str) -> float:
    """Expected accuracy of the majority answer when ties are broken at random (1/k if gold is among k)."""
    if not classes:
        return 0.0
    top = max(classes.values())
    leaders = [answer for answer, votes in classes.items() if votes == top]
    return sum(_correct(answer, gold) for answer in leaders) / len(leaders)


def score_row(task: str, gold: str, greedy_text: str, sample_texts: Sequence[str]) -> RowOutcome:
    """Score one row's greedy answer and its n samples against ``gold``, voting as training does."""
    answers = [extract_answer(text) for text in sample_texts]
    vote = vote_group(answers, VOTE)
    return RowOutcome(
        task=task,
        greedy=_correct(extract_answer(greedy_text), gold),
        sample=sum(_correct(a, gold) for a in answers) / len(answers),
        majority=vote.pseudo_label is not None and _correct(vote.pseudo_label, gold),
        majority_tie_split=tie_split_credit(vote.classes, gold),
        pass_at_n=any(_correct(a, gold) for a in answers),
        winner_share=vote.vote_share,
        labelled=vote.pseudo_label is not None,
    )


@dataclass
class PremiseResult:
    """The figures: ``overall`` and ``by_task`` map metric names (``schemas.premise``) to values."""

    overall: dict[str, float]
    by_task: dict[str, dict[str, float]]
    bins: list[dict[str, Any]]  # bin, low, high, prompts, precision, greedy


def _figures(outcomes: Sequence[RowOutcome]) -> dict[str, float]:
    n = len(outcomes)

    def mean(values: Sequence[float]) -> float:
        return round(sum(values) / n, 4)

    figures = {
        GREEDY: mean([o.greedy for o in outcomes]),
        SAMPLE: mean([o.sample for o in outcomes]),
        MAJORITY: mean([o.majority for o in outcomes]),
        MAJORITY_TIE_SPLIT: mean([o.majority_tie_split for o in outcomes]),
        PASS_AT_N: mean([o.pass_at_n for o in outcomes]),
        WINNER_SHARE: mean([o.winner_share for o in outcomes]),
    }
    figures[GAIN] = round(figures[MAJORITY] - figures[GREEDY], 4)
    figures[ROWS] = n
    return figures


def bin_label(low: float, high: float) -> str:
    last = high >= SHARE_BINS[-1]
    return f"[{low:.3g},{high:.3g}{']' if last else ')'}"


def summarise(outcomes: Sequence[RowOutcome]) -> PremiseResult:
    """Overall and per-task figures, and pseudo-label precision by vote-share bin (labelled rows only)."""
    if not outcomes:
        raise ValueError("summarise needs at least one row")
    per_task: dict[str, list[RowOutcome]] = defaultdict(list)
    for outcome in outcomes:
        per_task[outcome.task].append(outcome)
    bins = []
    for low, high in itertools.pairwise(SHARE_BINS):
        last = high >= SHARE_BINS[-1]
        inside = [
            o
            for o in outcomes
            if o.labelled
            and low <= o.winner_share
            and (o.winner_share <= high if last else o.winner_share < high)
        ]
        if inside:
            bins.append(
                {
                    "bin": bin_label(low, high),
                    "low": low,
                    "high": high,
                    "prompts": len(inside),
                    "precision": round(sum(o.majority for o in inside) / len(inside), 4),
                    "greedy": round(sum(o.greedy for o in inside) / len(inside), 4),
                }
            )
    return PremiseResult(
        overall=_figures(outcomes),
        by_task={task: _figures(rows) for task, rows in sorted(per_task.items())},
        bins=bins,
    )


# ---------------------------------------------------------------------------- measuring
def measure(engine: Engine, rows: pa.Table, config: PremiseConfig) -> tuple[PremiseResult, dict[str, Any]]:
    """Greedy and n sampled answers for every row, scored; returns the figures and generation stats."""
    from rich.console import Console
    from rich.progress import Progress

    records = rows.select(list(LABEL_COLUMNS)).to_pylist()
    greedy_params = SamplingParams(
        n=1, temperature=0.0, max_new_tokens=config.max_new_tokens, seed=config.seed
    )
    sample_params = SamplingParams(
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )
    outcomes: list[RowOutcome] = []
    truncated = samples = 0
    started = time.perf_counter()
    console = Console(stderr=True)
    # a live bar on a terminal only: elsewhere a transient bar leaves an empty line per use
    with Progress(transient=True, console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task("premise: greedy + samples", total=len(records))
        for start in range(0, len(records), GENERATION_CHUNK):
            chunk = records[start : start + GENERATION_CHUNK]
            requests = [GenerationRequest(str(r["id"]), r["problem"], list(r["images"])) for r in chunk]
            greedy = engine.generate(requests, greedy_params)
            sampled = engine.generate(requests, sample_params)
            for record, first, completions in zip(chunk, greedy, sampled, strict=True):
                outcomes.append(
                    score_row(record["task"], record["answer"], first[0].text, [c.text for c in completions])
                )
                truncated += sum(c.finish_reason == "length" for c in completions)
                samples += len(completions)
            progress.advance(bar, len(chunk))
    stats = {
        "generation_seconds": round(time.perf_counter() - started, 3),
        "truncated_sample_share": round(truncated / max(1, samples), 4),
    }
    return summarise(outcomes), stats


def premise_table(result: PremiseResult) -> pa.Table:
    """The ``premise`` table: one row per task, then the overall row (task "all")."""
    groups = [*result.by_task.items()]
    if len(result.by_task) != 1 or ALL_TASKS not in result.by_task:
        groups.append((ALL_TASKS, result.overall))
    data: dict[str, list[Any]] = {"task": [t for t, _ in groups], "rows": [int(f[ROWS]) for _, f in groups]}
    for metric in FIGURES:
        data[column(metric)] = [f[metric] for _, f in groups]
    return pa.table(data)


def bins_table(result: PremiseResult) -> pa.Table:
    """The ``premise_bins`` table: pseudo-label precision and greedy accuracy per vote-share bin."""
    return pa.Table.from_pylist(result.bins) if result.bins else schema_for("premise_bins").empty_table()


def run_premise(
    model_dir: str | Path | Engine, rows_source: str | Path, config: PremiseConfig, out_dir: str | Path
) -> Manifest:
    """Measure the premise of ``model_dir`` on the labelled rows of ``rows_source``; publish the artifact.

    Manifest stats: the overall figures under their metric names (``premise/greedy``, ...), plus
    ``by_task``, ``precision_by_vote_share``, the sampling settings and where the rows came from.
    """
    labelled = labelled_rows(rows_source, config.split, config.rows)
    if isinstance(model_dir, str | Path):
        from mmupt.engine import build_engine  # torch is imported only when a model is actually run

        engine: Engine = build_engine(model_dir, config.engine, seed=config.seed)
        model_id = str(model_dir)
    else:
        engine, model_id = model_dir, str(getattr(model_dir, "model_id", "engine"))
    result, generation = measure(engine, labelled.table, config)
    source = Path(rows_source)
    stats: dict[str, Any] = {
        **result.overall,
        "n": config.n,
        "temperature": config.temperature,
        "max_new_tokens": config.max_new_tokens,
        "split": labelled.split,
        "source": str(source),
        "by_task": result.by_task,
        "precision_by_vote_share": {
            b["bin"]: {k: b[k] for k in ("prompts", "precision", "greedy")} for b in result.bins
        },
        **generation,
    }
    inputs = {
        "rows": artifact_hash(source) if source.is_dir() else file_sha256(source),
        "model": model_id,
    }
    manifest = write_artifact(
        out_dir,
        KIND,
        {"premise": premise_table(result), "premise_bins": bins_table(result)},
        config=config,
        inputs=inputs,
        stats=stats,
    )
    logger.info("premise: %s", describe(result.overall, config.n, stats["split"]))
    return manifest


# ---------------------------------------------------------------------------- verdict
def premise_record(stats: Mapping[str, Any], config: PremiseConfig) -> dict[str, Any]:
    """What a campaign keeps of a premise artifact (decision.json, summary): figures, verdict, provenance."""
    verdict = premise_verdict(stats, config)
    figures = premise_figures(stats)
    return {
        **figures,
        HOLDS: float(verdict is None),
        "n": int(stats.get("n", config.n)),
        "temperature": stats.get("temperature", config.temperature),
        "split": stats.get("split"),
        "source": stats.get("source"),
        "min_gain": config.min_gain,
        "verdict": verdict,
        "summary": describe(figures, int(stats.get("n", config.n)), stats.get("split")),
    }


def premise_figures(stats: Mapping[str, Any]) -> dict[str, float]:
    """The overall figures (``premise/...`` metric names) out of a premise manifest's stats or record."""
    return {
        k: float(stats[k])
        for k in (*FIGURES, ROWS, HOLDS)
        if isinstance(stats.get(k), int | float) and not isinstance(stats.get(k), bool)
    }


def premise_metrics(stats: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics of a premise manifest: the overall figures, then ``premise/<figure>/<task>``."""
    metrics = premise_figures(stats)
    for task, figures in (stats.get("by_task") or {}).items():
        metrics.update({f"{k}/{task}": float(v) for k, v in figures.items() if k != ROWS})
    return metrics


def describe(figures: Mapping[str, float], n: int, split: str | None) -> str:
    """The figures in one line, for logs and the demo's output.

    ``majority@8 0.410 vs greedy 0.450 on 200 dev rows (gain -0.040; one sample 0.380, tie split
    0.430, pass@8 0.900)``
    """
    rows = int(figures[ROWS])
    where = f"{split} " if split else "labelled "
    return (
        f"majority@{n} {figures[MAJORITY]:.3f} vs greedy {figures[GREEDY]:.3f} on {rows} {where}rows "
        f"(gain {figures[GAIN]:+.3f}; one sample {figures[SAMPLE]:.3f}, tie split "
        f"{figures[MAJORITY_TIE_SPLIT]:.3f}, pass@{n} {figures[PASS_AT_N]:.3f})"
    )


def premise_verdict(stats: Mapping[str, Any], config: PremiseConfig) -> str | None:
    """None when the premise holds (majority@n - greedy > ``min_gain``), else the one-line diagnostic.

    >>> stats = {"premise/greedy": 0.45, "premise/majority": 0.41, "premise/sample": 0.38,
    ...          "premise/majority_tie_split": 0.43, "premise/pass_at_n": 0.9, "premise/rows": 200,
    ...          "n": 8, "split": "dev"}
    >>> premise_verdict(stats, PremiseConfig())[:82]
    'self-reward has nothing to distil for this model: majority@8 0.410 <= greedy 0.450'
    >>> premise_verdict({**stats, "premise/majority": 0.5}, PremiseConfig()) is None
    True
    """
    majority, greedy = float(stats[MAJORITY]), float(stats[GREEDY])
    gain = round(majority - greedy, 4)
    if gain > config.min_gain:
        return None
    n = int(stats.get("n", config.n))
    rows = int(stats[ROWS])
    where = f"{stats['split']} " if stats.get("split") else "labelled "
    bound = (
        f"greedy {greedy:.3f}"
        if config.min_gain == 0
        else f"greedy {greedy:.3f} + min_gain {config.min_gain:.3f}"
    )
    return (
        f"self-reward has nothing to distil for this model: majority@{n} {majority:.3f} <= {bound} on "
        f"{rows} {where}rows (one sample {float(stats[SAMPLE]):.3f}, tie split "
        f"{float(stats[MAJORITY_TIE_SPLIT]):.3f}, pass@{n} {float(stats[PASS_AT_N]):.3f}): the vote is no better "
        "label than the model's own answer"
    )


def stop_message(record: Mapping[str, Any] | None, config: PremiseConfig | None) -> str | None:
    """The one-line error that stops a campaign before training, or None (no check, premise holds, or
    ``require_premise`` is false: then the verdict is only a warning).

    ``record`` is a ``premise_record`` (its ``verdict`` already decided under ``config.min_gain``).
    """
    if record is None or config is None or record.get("verdict") is None or not config.require_premise:
        return None
    return (
        f"{record['verdict']}; stopped before any training round (set premise.require_premise: false "
        "to train anyway)"
    )
