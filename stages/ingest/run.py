"""The ingest stage: user datasets in the layouts they come in -> validated ``samples`` + ``rejects``.

    run_ingest([Path("data/geo3k")], Path("runs/c1/round-0/ingest"), IngestConfig())

Every campaign starts here; later stages read only what ingest wrote, so this is where a bad row is
stopped and said why. Steps: plan (find files, detect layouts, check required columns: file-level
problems stop the run before anything is written) -> stream each source in bounded batches ->
validate each row (``rows.validate_row``) -> write accepted rows to ``samples`` and refused rows to
``rejects`` through ``ArtifactWriter``, which publishes atomically (a failure leaves nothing).

Accounting, checked before publishing and stored in the manifest's stats: ``rows_read ==
rows_accepted + rows_rejected + duplicates``. Rows outside the configured ``splits`` are not read
(``skipped_by_split``). Unlike the reference MM-UPT data loading, rows are never dropped silently:
each refusal has a reason code (``records.REASONS``) and a detail.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mmupt.store import ArtifactWriter, Manifest, artifact_hash, check_output_dir, file_sha256
from schemas.artifacts import schema_for
from schemas.ingest import IngestConfig
from stages.ingest.detect import plan_sources
from stages.ingest.readers import count_rows, read_rows
from stages.ingest.records import RawRow, RowReject, SourceFile
from stages.ingest.rows import Accepted, Deduper, repair_text, validate_row

log = logging.getLogger(__name__)


@dataclass
class SourceTally:
    layout: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped_by_split: int = 0


@dataclass
class Tally:
    """Counts of what happened to every row; ``stats()`` is what the manifest records."""

    sources: dict[str, SourceTally] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    images_resized: int = 0
    oracle_answers: int = 0
    repeated_source_ids: int = 0

    def total(self, name: str) -> int:
        return sum(getattr(source, name) for source in self.sources.values())

    def check(self) -> None:
        read, accepted = self.total("read"), self.total("accepted")
        rejected, duplicates = self.total("rejected"), self.total("duplicates")
        if read != accepted + rejected + duplicates or rejected != sum(self.reasons.values()):
            raise AssertionError(f"ingest accounting broken: {self.stats()}")  # a bug, never user error

    def stats(self) -> dict[str, Any]:
        return {
            "rows_read": self.total("read"),
            "rows_accepted": self.total("accepted"),
            "rows_rejected": self.total("rejected"),
            "duplicates": self.total("duplicates"),
            "skipped_by_split": self.total("skipped_by_split"),
            "reject_reasons": dict(sorted(self.reasons.items())),
            "images_resized": self.images_resized,
            "oracle_answers": self.oracle_answers,
            "repeated_source_ids": self.repeated_source_ids,
            # a list, not a mapping keyed by file name: stats are flattened into metric names
            # (mmupt.store.flatten_stats), and file names are not valid metric names
            "sources": [{"source": name, **vars(source)} for name, source in self.sources.items()],
        }


class _Buffer:
    """Rows waiting to be written as one Parquet batch."""

    def __init__(self, writer: ArtifactWriter, table: str, size: int) -> None:
        self.writer, self.table, self.size = writer, table, size
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write(self.table, pa.Table.from_pylist(self.rows, schema=schema_for(self.table)))
            self.rows = []


@contextmanager
def _progress(config: IngestConfig, total: int | None) -> Iterator[tuple[Progress, TaskID]]:
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (config.progress and console.is_terminal),
    )
    with progress:
        yield progress, progress.add_task("ingest", total=total)


def _fingerprint(source: SourceFile) -> str:
    return artifact_hash(source.path) if source.layout == "world" else file_sha256(source.path)


@dataclass
class _RunState:
    tally: Tally
    dedup: Deduper
    samples: _Buffer
    rejects: _Buffer


def _handle(raw: RawRow, source: SourceFile, config: IngestConfig, state: _RunState) -> None:
    tally = state.tally.sources[source.display]
    if config.splits is not None and raw.split is not None and raw.split not in config.splits:
        tally.skipped_by_split += 1
        return
    tally.read += 1
    try:
        outcome = validate_row(raw, source, config, state.dedup)
    except RowReject as err:
        tally.rejected += 1
        state.tally.reasons[err.reason] += 1
        state.rejects.add(
            {
                "row": repair_text(raw.locator),
                "source": repair_text(source.display),
                "reason": err.reason,
                "detail": repair_text(err.detail),
            }
        )
        return
    if not isinstance(outcome, Accepted):
        tally.duplicates += 1
        return
    tally.accepted += 1
    state.tally.images_resized += outcome.resized
    state.tally.oracle_answers += outcome.row["oracle_answer"] is not None
    state.tally.repeated_source_ids += outcome.repeated_source_id
    state.samples.add(outcome.row)


def run_ingest(
    sources: list[Path], out_dir: Path, config: IngestConfig, layout: str | None = None
) -> Manifest:
    """Ingest ``sources`` (files or folders) into an artifact at ``out_dir``; returns its manifest.

    ``layout`` forces one layout for every source (else each is detected). Raises
    ``InputDataError`` for file-level problems; nothing is left at ``out_dir`` then.
    """
    started = time.perf_counter()
    planned = plan_sources(list(sources), config, layout)
    check_output_dir(out_dir, "ingest", inputs=tuple(sources))
    inputs = {str(source.path): _fingerprint(source) for source in planned}
    counts = [count_rows(source) for source in planned]
    total = None if None in counts else sum(c for c in counts if c is not None)
    tally = Tally()
    # Settings that cannot change the artifact's bytes stay out of its cache key.
    keyed = config.model_dump(mode="json", exclude={"progress", "read_batch_rows"})
    with ArtifactWriter(
        out_dir, "ingest", config=keyed, inputs=inputs, required=("samples", "rejects")
    ) as writer:
        state = _RunState(
            tally,
            Deduper(),
            _Buffer(writer, "samples", config.write_batch_rows),
            _Buffer(writer, "rejects", 4096),
        )
        with _progress(config, total) as (progress, task):
            for source in planned:
                tally.sources.setdefault(source.display, SourceTally(source.layout))
                for batch in read_rows(source, config):
                    for raw in batch:
                        _handle(raw, source, config, state)
                    progress.advance(task, len(batch))
        state.samples.flush()
        state.rejects.flush()
        tally.check()
        writer.stats.update(tally.stats())
        writer.stats["seconds"] = round(time.perf_counter() - started, 3)
    assert writer.manifest is not None
    stats = writer.manifest.stats
    log.info(
        "ingest: %d read, %d accepted, %d rejected, %d duplicates -> %s",
        stats["rows_read"],
        stats["rows_accepted"],
        stats["rows_rejected"],
        stats["duplicates"],
        out_dir,
    )
    if stats["rows_accepted"] == 0:
        log.warning("ingest accepted no rows: see %s/rejects.parquet for why", out_dir)
    return writer.manifest
