"""The training input of a round: original questions mixed with the round's synthetic ones.

A stage of its own (not a step inside training) so each round's exact training set is an
artifact: "which synthetic questions were trained on in round 3" is a DuckDB query.

``run_window`` cuts a round's originals first (``prompts_per_round`` of the campaign): window k of
one seeded order of the pool, so consecutive rounds synthesize from, and train on, new prompts.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from mmupt.store import Manifest, artifact_hash, read_table, write_artifact
from schemas.campaign import MixConfig, RoundWindow
from stages.synthesis.mix import mix_samples


def window_rows(pool_size: int, window: RoundWindow) -> list[int]:
    """Row indices of ``window``: slice ``index - 1`` of a seeded order of the pool, wrapping at its end.

    The order depends only on the pool size and the seed, so round k's window is the same whoever
    computes it, and windows 1..floor(pool / size) are disjoint.
    """
    if pool_size == 0:
        return []
    order = list(range(pool_size))
    random.Random(f"mmupt-round-window|{window.seed}|{pool_size}").shuffle(order)
    start = (window.index - 1) * window.size
    return [order[(start + k) % pool_size] for k in range(min(window.size, pool_size))]


def run_window(samples_dir: Path, window: RoundWindow, out_dir: Path) -> Manifest:
    """Write the samples artifact of ``window``'s rows of the pool (kind ``window``), in window order."""
    pool = read_table(samples_dir, "samples")
    taken = window_rows(pool.num_rows, window)
    stats = {
        "rows": len(taken),
        "pool_rows": pool.num_rows,
        "window_index": window.index,
        "wrapped": window.index * window.size > pool.num_rows,
    }
    return write_artifact(
        out_dir,
        "window",
        {"samples": pool.take(pa.array(taken, pa.int64()))},
        config=window.model_dump(),
        inputs={"samples": artifact_hash(samples_dir)},
        stats=stats,
    )


def run_mix(samples_dir: Path, synthetic_dir: Path | None, config: MixConfig, out_dir: Path) -> Manifest:
    """Write a samples artifact of originals + ``config.ratio`` synthetic rows (originals only without
    synthesis)."""
    original = read_table(samples_dir, "samples")
    inputs = {"samples": artifact_hash(samples_dir)}
    if synthetic_dir is None or config.ratio == 0.0:
        mixed, n_synthetic = original, 0
    else:
        synthetic = read_table(synthetic_dir, "synthetic")
        inputs["synthetic"] = artifact_hash(synthetic_dir)
        mixed = mix_samples(original, synthetic, config.ratio, config.seed)
        n_synthetic = sum('"synthetic"' in (m or "") for m in mixed.column("metadata").to_pylist())
    stats = {
        "rows": mixed.num_rows,
        "synthetic_rows": n_synthetic,
        "original_rows": mixed.num_rows - n_synthetic,
    }
    return write_artifact(
        out_dir, "mix", {"samples": mixed}, config=config.model_dump(), inputs=inputs, stats=stats
    )
