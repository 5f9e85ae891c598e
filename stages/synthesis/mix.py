"""Mix original samples and synthetic questions into one training input (SAMPLES schema).

``ratio`` is the share of synthetic rows in the mix. The mix is as large as the ratio allows
without repeating a row: ``total = min(n_synthetic / ratio, n_original / (1 - ratio))``, so with
plenty of synthetic rows every original is kept and synthetic rows are subsampled, and the other
way round. Which rows are taken, and their order, follow ``seed``.

Synthetic rows keep their provenance in ``metadata`` (``synthetic.parent_id``, ``strategy``,
``prompt_version``, ``generator_model``), since SAMPLES has no columns for it; a synthetic row whose
id equals an original's (the model rewrote an existing question exactly) is dropped as a duplicate.
"""

from __future__ import annotations

import json
import math
import random

import pyarrow as pa

from mmupt.errors import InputDataError
from mmupt.store import conform
from schemas.artifacts import SAMPLES

PROVENANCE = ("parent_id", "strategy", "prompt_version", "generator_model")


def mix_counts(n_original: int, n_synthetic: int, ratio: float) -> tuple[int, int]:
    """``(originals, synthetic)`` to take: the largest mix with ``synthetic / total ~= ratio``."""
    if not 0.0 <= ratio <= 1.0:
        raise InputDataError(f"synthetic_ratio must be within [0, 1], got {ratio}")
    if ratio == 0.0:
        return n_original, 0
    if ratio == 1.0:
        return 0, n_synthetic
    total = math.floor(min(n_synthetic / ratio, n_original / (1.0 - ratio)) + 1e-9)
    synthetic = min(n_synthetic, round(ratio * total))
    return min(n_original, total - synthetic), synthetic


def _with_provenance(synthetic: pa.Table) -> pa.Table:
    """SYNTHETIC rows as SAMPLES rows, provenance folded into the metadata JSON object."""
    metadata = []
    columns = {name: synthetic.column(name).to_pylist() for name in (*PROVENANCE, "metadata")}
    for i in range(synthetic.num_rows):
        base = json.loads(columns["metadata"][i]) if columns["metadata"][i] else {}
        if not isinstance(base, dict):
            base = {"value": base}
        base["synthetic"] = {name: columns[name][i] for name in PROVENANCE}
        metadata.append(json.dumps(base, sort_keys=True))
    table = synthetic.select([n for n in SAMPLES.names if n != "metadata"])
    return table.append_column("metadata", pa.array(metadata, pa.string())).select(SAMPLES.names)


def mix_samples(original: pa.Table, synthetic: pa.Table, ratio: float, seed: int = 0) -> pa.Table:
    """A shuffled SAMPLES table in which ``ratio`` of the rows are synthetic (1.0: synthetic only).

    Raises ``InputDataError`` when the ratio asks for rows that do not exist (synthetic rows with an
    empty synthetic table, originals with an empty samples table) or is outside [0, 1].
    """
    original = conform(original, "samples")
    missing = [name for name in PROVENANCE if name not in synthetic.column_names]
    if missing:
        raise InputDataError(
            f"mix: the synthetic table lacks {missing}; pass the synthesize stage's synthetic table"
        )
    known = set(original.column("id").to_pylist())
    fresh = [rid not in known for rid in synthetic.column("id").to_pylist()]
    synthetic = synthetic.filter(pa.array(fresh, pa.bool_()))
    if ratio < 1 and original.num_rows == 0:
        raise InputDataError(
            f"mix: synthetic_ratio {ratio} asks for original rows but the samples table is empty"
        )
    if ratio > 0 and synthetic.num_rows == 0:
        raise InputDataError(
            f"mix: synthetic_ratio {ratio} asks for synthetic rows but there are none (after removing ids "
            "that are already original samples)"
        )
    n_orig, n_syn = mix_counts(original.num_rows, synthetic.num_rows, ratio)
    rng = random.Random(seed)
    take_orig = sorted(rng.sample(range(original.num_rows), n_orig))
    take_syn = sorted(rng.sample(range(synthetic.num_rows), n_syn))
    parts = [
        original.take(pa.array(take_orig, pa.int64())),
        _with_provenance(synthetic.take(pa.array(take_syn, pa.int64()))) if n_syn else SAMPLES.empty_table(),
    ]
    mixed = pa.concat_tables([conform(part, "samples") for part in parts])
    order = list(range(mixed.num_rows))
    rng.shuffle(order)
    return mixed.take(pa.array(order, pa.int64()))
