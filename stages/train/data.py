"""Training prompts: load them from artifacts/Parquet, and decide which ones each step uses.

The sampler is stateless on purpose: step ``s`` maps to ``(epoch, batch in epoch)`` arithmetically
and each epoch's order is a seeded shuffle of ``(seed, pool, epoch)``. Resuming at step ``s`` therefore
needs nothing but ``s`` to replay the exact data order, and every worker computes the same batch
without talking to the others (then takes its rank's share).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mmupt.errors import InputDataError
from mmupt.store import MANIFEST, artifact_hash, file_sha256, read_manifest, read_table, read_user_parquet

log = logging.getLogger(__name__)

REQUIRED = ("id", "images", "problem")


@dataclass(frozen=True)
class Prompt:
    """One training question. ``oracle_answer`` is read for diagnostics (and ``reward: oracle``) only."""

    id: str
    problem: str
    images: list[bytes]
    oracle_answer: str | None
    synthetic: bool


@dataclass(frozen=True)
class PromptPool:
    original: list[Prompt]
    synthetic: list[Prompt]
    sources: dict[str, str]  # path -> content hash, for the manifest's inputs

    def __len__(self) -> int:
        return len(self.original) + len(self.synthetic)

    def get(self, ref: tuple[bool, int]) -> Prompt:
        synthetic, index = ref
        if synthetic:
            return self.synthetic[index]
        # One-pool sampling (no synthetic_ratio) indexes the originals, then the synthetic rows.
        n_original = len(self.original)
        return self.original[index] if index < n_original else self.synthetic[index - n_original]


def load_prompts(paths: list[str | Path]) -> PromptPool:
    """Read every source into one pool; ids are deduplicated (first wins), an empty pool is an error.

    Each path is a samples/synthetic artifact directory, a world artifact (its ``unlabeled`` split,
    with ``answer`` as the hidden oracle), or a Parquet file with at least ``id``, ``images`` and
    ``problem`` (``oracle_answer`` optional; a ``parent_id`` column marks synthetic rows).
    """
    if not paths:
        raise InputDataError("no samples given: pass --samples with a samples artifact or Parquet file")
    original: list[Prompt] = []
    synthetic: list[Prompt] = []
    sources: dict[str, str] = {}
    seen: set[str] = set()
    duplicates = 0
    for raw in paths:
        path = Path(raw)
        for table, is_synthetic in _read_source(path):
            for row in _rows(table, path):
                if row["id"] in seen:
                    duplicates += 1
                    continue
                seen.add(row["id"])
                prompt = Prompt(
                    row["id"], row["problem"], list(row["images"]), row.get("oracle_answer"), is_synthetic
                )
                (synthetic if is_synthetic else original).append(prompt)
        sources[str(path)] = artifact_hash(path) if path.is_dir() else file_sha256(path)
    if duplicates:
        log.warning("dropped %d prompts whose id appeared earlier in the sources", duplicates)
    if not original and not synthetic:
        raise InputDataError(f"{', '.join(str(p) for p in paths)}: no prompts (the samples are empty)")
    return PromptPool(original, synthetic, sources)


def _read_source(path: Path) -> list[tuple[pa.Table, bool]]:
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise InputDataError(
                f"{path}: not an artifact (no {MANIFEST}); pass a samples artifact or a Parquet file"
            )
        tables = read_manifest(path).tables
        out = []
        if "samples" in tables:
            out.append((read_table(path, "samples"), False))
        if "synthetic" in tables:
            out.append((read_table(path, "synthetic"), True))
        if "world" in tables:
            world = read_table(path, "world")
            world = world.filter(pc.equal(world["split"], "unlabeled"))
            out.append(
                (
                    world.rename_columns(
                        ["oracle_answer" if c == "answer" else c for c in world.column_names]
                    ),
                    False,
                )
            )
        if not out:
            raise InputDataError(
                f"{path}: artifact has no samples, synthetic or world table (it has {sorted(tables)})"
            )
        return out
    if not path.is_file():
        raise InputDataError(f"{path}: samples not found (pass an artifact directory or a Parquet file)")
    table = read_user_parquet(path)
    return [(table, "parent_id" in table.column_names)]


def _rows(table: pa.Table, path: Path) -> list[dict[str, Any]]:
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputDataError(
            f"{path}: missing column(s) {missing} (found {table.column_names}); the SAMPLES schema is in "
            "schemas/artifacts.py"
        )
    columns = [c for c in (*REQUIRED, "oracle_answer") if c in table.column_names]
    rows = table.select(columns).to_pylist()
    for i, row in enumerate(rows):
        if not isinstance(row["id"], str) or not row["id"]:
            raise InputDataError(f"{path}: row {i}: id must be a non-empty string")
        if not isinstance(row["problem"], str) or not row["problem"].strip():
            raise InputDataError(f"{path}: row {i} (id {row['id']}): empty problem")
        if row["images"] is None:
            raise InputDataError(f"{path}: row {i} (id {row['id']}): images is null (use an empty list)")
    return rows


# ---------------------------------------------------------------------------- sampler


@dataclass(frozen=True)
class PromptSampler:
    """Deterministic batches of prompt references ``(synthetic, index)`` for every step.

    Original prompts drive the epochs: ``steps_per_epoch = n_original // original_per_step`` (the
    last partial batch is dropped so a batch never holds one prompt twice). Synthetic prompts, when
    mixed in by ratio, cycle through their own shuffles at their own pace.
    """

    n_original: int
    n_synthetic: int
    prompts_per_step: int
    synthetic_ratio: float | None
    seed: int

    @classmethod
    def for_pool(
        cls, pool: PromptPool, prompts_per_step: int, synthetic_ratio: float | None, seed: int
    ) -> PromptSampler:
        if synthetic_ratio is None:
            # One pool: synthetic rows are ordinary prompts.
            return cls(len(pool), 0, prompts_per_step, None, seed)
        return cls(len(pool.original), len(pool.synthetic), prompts_per_step, synthetic_ratio, seed)

    # ---- sizes
    @property
    def synthetic_per_step(self) -> int:
        if self.synthetic_ratio is None:
            return 0
        return min(self.prompts_per_step - 1, max(1, round(self.synthetic_ratio * self.prompts_per_step)))

    @property
    def original_per_step(self) -> int:
        return self.prompts_per_step - self.synthetic_per_step

    @property
    def steps_per_epoch(self) -> int:
        return self.n_original // self.original_per_step

    def check(self, source: str) -> None:
        """Raise ``InputDataError`` when the pool cannot fill one step."""
        if self.n_original < self.original_per_step:
            raise InputDataError(
                f"{source}: {self.n_original} prompts but a step needs {self.original_per_step}: lower "
                "data.prompts_per_step (and update.prompts_per_update) or add prompts"
            )
        if self.synthetic_per_step and self.n_synthetic < self.synthetic_per_step:
            raise InputDataError(
                f"{source}: data.synthetic_ratio asks for {self.synthetic_per_step} synthetic prompts per step "
                f"but there are {self.n_synthetic}: lower the ratio or add synthetic samples"
            )

    def total_steps(self, epochs: float, max_steps: int | None) -> int:
        total = max(1, round(epochs * self.steps_per_epoch))
        return min(total, max_steps) if max_steps else total

    # ---- order
    def batch(self, step: int) -> list[tuple[bool, int]]:
        """Prompt references of 1-based ``step``: originals first, then synthetic (a pure function)."""
        index = step - 1
        refs = [
            (False, i) for i in _take(self.n_original, self.original_per_step, index, self.seed, "original")
        ]
        if self.synthetic_per_step:
            chosen = _take(self.n_synthetic, self.synthetic_per_step, index, self.seed, "synthetic")
            refs += [(True, i) for i in chosen]
        return refs

    def position(self, step: int) -> dict[str, int]:
        """Where ``step`` sits in the data order (stored in checkpoints for humans and checks)."""
        return {
            "step": step,
            "epoch": (step - 1) // self.steps_per_epoch,
            "batch": (step - 1) % self.steps_per_epoch,
        }

    def fingerprint(self) -> str:
        """What must not change between a checkpoint and its resume, or the data order would."""
        return json.dumps(
            [self.n_original, self.n_synthetic, self.prompts_per_step, self.synthetic_ratio, self.seed]
        )


def _take(pool_size: int, per_step: int, index: int, seed: int, tag: str) -> list[int]:
    per_epoch = pool_size // per_step
    epoch, batch = divmod(index, per_epoch)
    order = _epoch_order(pool_size, seed, tag, epoch)
    return list(order[batch * per_step : (batch + 1) * per_step])


@lru_cache(maxsize=8)
def _epoch_order(pool_size: int, seed: int, tag: str, epoch: int) -> tuple[int, ...]:
    order = list(range(pool_size))
    random.Random(f"mmupt-train|{seed}|{tag}|{epoch}").shuffle(order)  # str seeds hash stably (sha512)
    return tuple(order)


def shard(refs: list[Any], rank: int, world_size: int) -> list[Any]:
    """The rank's share of a step: strided, so ranks get equal counts and a mix of both pools."""
    return refs[rank::world_size]
