"""The training input of a round: original questions mixed with the round's synthetic ones.

A stage of its own (not a step inside training) so each round's exact training set is an
artifact: "which synthetic questions were trained on in round 3" is a DuckDB query.
"""

from __future__ import annotations

from pathlib import Path

from mmupt.store import Manifest, artifact_hash, read_table, write_artifact
from stages.synthesis.mix import mix_samples


def run_mix(
    samples_dir: Path, synthetic_dir: Path | None, ratio: float, seed: int, out_dir: Path
) -> Manifest:
    """Write a samples artifact of originals + ``ratio`` synthetic rows (originals only without synthesis)."""
    original = read_table(samples_dir, "samples")
    inputs = {"samples": artifact_hash(samples_dir)}
    if synthetic_dir is None or ratio == 0.0:
        mixed, n_synthetic = original, 0
    else:
        synthetic = read_table(synthetic_dir, "synthetic")
        inputs["synthetic"] = artifact_hash(synthetic_dir)
        mixed = mix_samples(original, synthetic, ratio, seed)
        n_synthetic = sum('"synthetic"' in (m or "") for m in mixed.column("metadata").to_pylist())
    stats = {
        "rows": mixed.num_rows,
        "synthetic_rows": n_synthetic,
        "original_rows": mixed.num_rows - n_synthetic,
    }
    return write_artifact(
        out_dir, "mix", {"samples": mixed}, config={"ratio": ratio, "seed": seed}, inputs=inputs, stats=stats
    )
