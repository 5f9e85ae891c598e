"""The synthesis stage: ``samples`` + a model -> ``synthetic`` questions about the same images + ``rejects``.

    run_synthesize(Path("runs/c1/round-0/ingest"), Path("runs/c1/round-0/model"),
                   Path("runs/c1/round-0/synthesize"), SynthesizeConfig(strategy="both"))

Steps: read and check the samples (no image anywhere is an error) -> plan shards -> run the
unfinished ones (``jobs.run_shards``: in-process or Ray, resumable) -> merge in shard order,
dropping questions that repeat an earlier shard's question or any original question on the same
image(s) -> write ``synthetic`` + ``rejects`` through ``ArtifactWriter`` with survival statistics.
Finished shards are carried into the published artifact under ``.shards/`` (hidden: not a table,
not in DuckDB views), so a re-run with the same inputs only regenerates what is missing.

When no candidate survives, the stage fails with the drop reasons instead of publishing an empty
training set that a later stage would silently train on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmupt.errors import InputDataError, NothingSurvivedError
from mmupt.modeling.inputs import decode_image
from mmupt.modeling.loader import check_model_dir
from mmupt.store import (
    MANIFEST,
    ArtifactWriter,
    Manifest,
    artifact_hash,
    check_output_dir,
    conform,
    file_sha256,
    read_manifest,
    read_table,
    read_user_parquet,
)
from schemas.artifacts import REJECTS, SAMPLES, SYNTHETIC
from schemas.synthesize import STRATEGIES, SynthesizeConfig
from stages.synthesis.filters import FILTER_REASONS, duplicate_key, image_key
from stages.synthesis.generate import PARENT_REASONS, ShardResult, Tally
from stages.synthesis.jobs import Shard, model_fingerprint, plan_shards, run_shards
from stages.synthesis.parse import PARSE_REASONS
from stages.synthesis.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)

SHARDS_DIR = ".shards"
REASONS: dict[str, str] = {**PARSE_REASONS, **FILTER_REASONS, **PARENT_REASONS}
"""Every reject reason code of the stage and what it means."""

REQUIRED_COLUMNS = ("id", "images", "problem")


# ---------------------------------------------------------------------------- input
def read_samples(path: Path) -> pa.Table:
    """A samples artifact directory, or a Parquet file with at least id, images and problem (SAMPLES)."""
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise InputDataError(
                f"{path}: not an artifact (no {MANIFEST}); pass a samples artifact or a Parquet file"
            )
        tables = read_manifest(path).tables
        if "samples" not in tables:
            raise InputDataError(
                f"{path}: artifact has no samples table (it has {sorted(tables)}); run mmupt ingest"
            )
        return read_table(path, "samples")
    if not path.is_file():
        raise InputDataError(
            f"{path}: samples not found (pass a samples artifact directory or a Parquet file)"
        )
    table = read_user_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputDataError(
            f"{path}: missing column(s) {missing} (found {table.column_names}); synthesis needs samples with "
            "id, images and problem (schema SAMPLES in schemas/artifacts.py)"
        )
    return conform(_complete(table, path), "samples")


def _complete(table: pa.Table, path: Path) -> pa.Table:
    """Fill the optional SAMPLES columns a hand-made Parquet file may lack."""
    n = table.num_rows
    if "oracle_answer" not in table.column_names:
        table = table.append_column("oracle_answer", pa.nulls(n, pa.string()))
    if "source" not in table.column_names:
        table = table.append_column("source", pa.array([path.name] * n, pa.string()))
    if "metadata" not in table.column_names:
        table = table.append_column("metadata", pa.nulls(n, pa.string()))
    if "image_widths" not in table.column_names or "image_heights" not in table.column_names:
        sizes = [
            [decode_image(b).size for b in images or []] for images in table.column("images").to_pylist()
        ]
        for name, axis in (("image_widths", 0), ("image_heights", 1)):
            if name not in table.column_names:
                table = table.append_column(
                    name, pa.array([[s[axis] for s in row] for row in sizes], pa.list_(pa.int32()))
                )
    return table.select(SAMPLES.names)


def _check_images(table: pa.Table, path: Path) -> None:
    if table.num_rows == 0:
        raise InputDataError(f"{path}: no samples (the table has no rows)")
    lengths = table.column("images").to_pylist()
    if not any(images for images in lengths):
        raise InputDataError(
            f"{path}: no sample has an image; synthesis writes questions about images, so it needs image "
            "samples (check the images column, or the ingest rejects)"
        )


# ---------------------------------------------------------------------------- merge
def _merge(results: list[ShardResult], samples: pa.Table) -> tuple[pa.Table, pa.Table, Tally]:
    """Concatenate shards in order; drop repeats across shards and copies of any original on the same image."""
    tally = Tally()
    for result in results:
        tally.merge(result.tally)
    parent_images: dict[str, str] = {}
    originals: dict[str, str] = {}
    for rid, images_key, problem in _image_keys(samples):
        parent_images[rid] = images_key
        originals.setdefault(duplicate_key(images_key, problem), rid)
    synthetic = pa.concat_tables([SYNTHETIC.empty_table()] + [r.synthetic for r in results])
    rejects = [REJECTS.empty_table()] + [r.rejects for r in results]
    seen: dict[str, str] = {}
    keep: list[bool] = []
    dropped: list[dict[str, Any]] = []
    for row in synthetic.select(["problem", "parent_id", "strategy", "metadata"]).to_pylist():
        key = duplicate_key(parent_images[row["parent_id"]], row["problem"])  # images are the parent's
        candidate = json.loads(row["metadata"])["candidate"]
        reason = None
        if key in originals:
            reason = ("copy", f"the original question of sample {originals[key]} on the same image")
        elif key in seen:
            reason = ("duplicate", f"same question as {seen[key]}")
        keep.append(reason is None)
        if reason is None:
            seen[key] = candidate
            continue
        dropped.append(
            {"row": candidate, "source": row["parent_id"], "reason": reason[0], "detail": reason[1]}
        )
        tally.kept[row["strategy"]] -= 1
        tally.drop(row["strategy"], reason[0])
    if dropped:
        rejects.append(pa.Table.from_pylist(dropped, schema=REJECTS))
    tally.check()
    return synthetic.filter(pa.array(keep, pa.bool_())), pa.concat_tables(rejects), tally


def _image_keys(samples: pa.Table, batch: int = 256) -> Iterator[tuple[str, str, str]]:
    """``(id, image_key, problem)`` per sample, a batch at a time (images are not all copied at once)."""
    for start in range(0, samples.num_rows, batch):
        part = samples.slice(start, batch).select(["id", "images", "problem"])
        for row in part.to_pylist():
            yield row["id"], image_key(row["images"] or []), row["problem"]


def survival_stats(tally: Tally) -> dict[str, Any]:
    """Candidates, kept and survival rate overall and by strategy; drops by reason (manifest stats)."""
    by_strategy = {}
    for strategy in STRATEGIES:
        n = tally.candidates.get(strategy, 0)
        if n == 0 and strategy not in tally.drops:
            continue
        kept = tally.kept.get(strategy, 0)
        drops = tally.drops.get(strategy, Counter())
        by_strategy[strategy] = {
            "candidates": n,
            "kept": kept,
            "survival_rate": kept / n if n else 0.0,
            "drops": dict(sorted(drops.items(), key=lambda kv: -kv[1])),
        }
    total = sum(tally.candidates.values())
    kept = sum(tally.kept.values())
    drops: Counter[str] = Counter()
    for reasons in tally.drops.values():
        drops.update(reasons)
    return {
        "samples": tally.parents,
        "candidates": total,
        "kept": kept,
        "survival_rate": kept / total if total else 0.0,
        "by_strategy": by_strategy,
        "drops": dict(sorted(drops.items(), key=lambda kv: -kv[1])),
        "parents_skipped": dict(tally.parents_skipped),
        "context_answers": dict(tally.context_answers),
    }


# ---------------------------------------------------------------------------- stage
def run_synthesize(samples_dir: Path, model_dir: Path, out_dir: Path, config: SynthesizeConfig) -> Manifest:
    """Write new questions about the samples' images with ``model_dir``; returns the artifact's manifest.

    ``samples_dir`` is a samples artifact (or a SAMPLES Parquet file). Raises ``InputDataError`` for
    unusable samples, ``ModelLoadError`` for a bad model directory, ``MmuptError`` when shards fail
    after their retries, ``NothingSurvivedError`` when no question survives the filters.
    """
    started = time.perf_counter()
    samples_dir, model_dir, out_dir = Path(samples_dir), Path(model_dir), Path(out_dir)
    check_output_dir(out_dir, "synthesize", inputs=(samples_dir, model_dir), scratch=(SHARDS_DIR,))
    samples = read_samples(samples_dir)
    if config.max_samples is not None:
        samples = samples.slice(0, config.max_samples)
    _check_images(samples, samples_dir)
    check_model_dir(model_dir)
    model_key = model_fingerprint(model_dir)
    model_id = str(model_dir)
    shards = plan_shards(samples, config, model_key)
    shards_root = out_dir / SHARDS_DIR
    resumed = sum((shards_root / s.shard_id / MANIFEST).is_file() for s in shards)
    with _progress(config, len(shards) - resumed) as advance:
        results = run_shards(shards, shards_root, model_dir, model_id, config, on_done=advance)
    synthetic, rejects, tally = _merge(results, samples)
    stats = survival_stats(tally)
    stats.update(
        {
            "shards": {"total": len(shards), "resumed": resumed, "ran": len(shards) - resumed},
            "strategies": list(config.strategies),
            "prompt_version": PROMPT_VERSION,
            "generator_model": model_id,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
    _log(stats)
    if stats["kept"] == 0:
        raise NothingSurvivedError(_nothing_survived(stats, shards_root))
    inputs = {
        "samples": artifact_hash(samples_dir) if samples_dir.is_dir() else file_sha256(samples_dir),
        "model": model_key,
    }
    with ArtifactWriter(
        out_dir, "synthesize", config=config, inputs=inputs, required=("synthetic", "rejects"), owned=True
    ) as writer:
        writer.write("synthetic", synthetic)
        writer.write("rejects", rejects)
        writer.stats.update(stats)
        _carry_shards(shards_root, [s.shard_id for s in shards], writer.workdir / SHARDS_DIR)
    assert writer.manifest is not None
    return writer.manifest


def _nothing_survived(stats: dict[str, Any], shards_root: Path) -> str:
    """The one-line error when every candidate was dropped: counts, reasons, and what the top one means."""
    reasons = ", ".join(f"{r} {n}" for r, n in stats["drops"].items()) or "no candidates"
    skipped = ", ".join(f"{r} {n}" for r, n in stats["parents_skipped"].items())
    top = next(iter(stats["drops"]), None) or next(iter(stats["parents_skipped"]), None)
    hint = f" Most common: {top} = {REASONS[top]}." if top in REASONS else ""
    return (
        f"synthesis kept no question: 0 of {stats['candidates']} candidates survived (drops: {reasons}"
        + (f"; samples skipped: {skipped}" if skipped else "")
        + f"), so nothing was published (an empty training set would be worse than an error).{hint} "
        f"Per-shard rejects: {shards_root}"
    )


@contextmanager
def _progress(config: SynthesizeConfig, total: int) -> Iterator[Callable[[Shard], None]]:
    """A shard progress bar on a terminal (nothing otherwise); yields the per-shard callback."""
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]synthesize[/] shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (config.progress and console.is_terminal and sys.stderr.isatty()),
    )
    with progress:
        task = progress.add_task("shards", total=total)
        yield lambda shard: progress.advance(task)


def _carry_shards(src: Path, shard_ids: list[str], dst: Path) -> None:
    """Hard-link this run's finished shards into the new artifact (stale shards are left behind).

    Links, not moves: until the new artifact is published the old shards stay valid, so a crash
    while publishing still resumes.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for shard_id in shard_ids:
        try:
            shutil.copytree(src / shard_id, dst / shard_id, copy_function=os.link)
        except OSError:  # no hard links here: copy (after removing partial links, never writing through them)
            shutil.rmtree(dst / shard_id, ignore_errors=True)
            shutil.copytree(src / shard_id, dst / shard_id)


def _log(stats: dict[str, Any]) -> None:
    for strategy, row in stats["by_strategy"].items():
        log.info(
            "synthesize %s: %d/%d kept (%.1f%%), drops %s",
            strategy,
            row["kept"],
            row["candidates"],
            100 * row["survival_rate"],
            row["drops"],
        )
