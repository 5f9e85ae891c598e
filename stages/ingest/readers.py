"""Readers: every layout streamed as batches of ``RawRow`` with bounded memory.

Parquet is read with ``iter_batches`` (``read_batch_rows`` rows at a time, only the needed
columns), JSONL line by line, JSON documents element by element (``jsonstream``), CSV row by row.
Nothing here checks content beyond what it takes to find a row: that is ``rows.validate_row``'s
job, the same for every layout. The first row of a JSON/CSV file decides whether the file is of
the layout at all (a file-level ``InputDataError``); later unparsable rows become rejects.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mmupt.errors import ArtifactError, InputDataError
from mmupt.store import read_manifest, table_path
from schemas.ingest import IngestConfig
from stages.ingest.columns import LAYOUT_ROLES, ColumnPlan, plan_columns
from stages.ingest.jsonstream import JsonStreamError, iter_json_rows
from stages.ingest.records import ImageRef, RawRow, RowReject, SourceFile
from stages.ingest.rows import tagged_answer, utf8_problem

Batches = Iterator[list[RawRow]]


def image_refs(value: Any) -> list[ImageRef]:
    """Every image a cell holds: bytes, a path, a ``{bytes, path}`` struct, or a list of those.

    >>> image_refs([{"bytes": b"x", "path": "a.png"}, "b.png", None])
    [ImageRef(data=b'x', path='a.png'), ImageRef(data=None, path='b.png')]
    """
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        return [ImageRef(data=bytes(value))]
    if isinstance(value, str):
        return [ImageRef(path=value)]
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is None and path is None:
            return []  # a null HF Image cell (e.g. an unused image_5 column)
        return [
            ImageRef(data=bytes(data) if isinstance(data, bytes | bytearray) else None, path=path or None)
        ]
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in image_refs(item)]
    return [ImageRef()]  # an unusable value: rejected as image_missing


def _text_id(value: Any) -> str | None:
    return None if value is None else str(value)


def _raw_row(
    record: dict[str, Any], plan: ColumnPlan, source: SourceFile, locator: str, extras: dict[str, Any]
) -> RawRow:
    answer = record.get(plan.answer) if plan.answer else None
    if answer is None and plan.solution:
        answer = tagged_answer(record.get(plan.solution))
    split = record.get(plan.split) if plan.split else None
    return RawRow(
        locator=locator,
        problem=record.get(plan.problem),
        images=[ref for name in plan.images for ref in image_refs(record.get(name))],
        answer=answer,
        source_id=_text_id(record.get(plan.source_id)) if plan.source_id else None,
        split=str(split) if split is not None else source.split,
        extras=extras,
    )


def _batched(rows: Iterable[RawRow], size: int) -> Batches:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------------------- Parquet
def _open_parquet(path: Path, display: str) -> pq.ParquetFile:
    try:
        # pre_buffer (pyarrow's default) reads ahead every row group iter_batches will visit, so
        # memory grows with the file; off, it stays at about one row group.
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (OSError, pa.ArrowException, ValueError) as err:
        raise InputDataError(f"{display}: not a readable Parquet file ({err})") from None


def _parquet_batches(path: Path, source: SourceFile, config: IngestConfig) -> Batches:
    handle = _open_parquet(path, source.display)
    schema = handle.schema_arrow
    plan = plan_columns(source.layout, {f.name: f.type for f in schema}, config.columns, source.display)
    position = 0
    try:
        for batch in handle.iter_batches(batch_size=config.read_batch_rows, columns=plan.columns):
            rows = []
            for record in batch.to_pylist():
                extras = {name: record.get(name) for name in plan.extras}
                rows.append(_raw_row(record, plan, source, f"{source.display}:{position}", extras))
                position += 1
            yield rows
    except (OSError, pa.ArrowException) as err:
        raise InputDataError(f"{source.display}: cannot read the rows after row {position} ({err})") from None


def read_parquet(source: SourceFile, config: IngestConfig) -> Batches:
    return _parquet_batches(source.path, source, config)


def _world_table(source: SourceFile) -> Path:
    try:
        manifest = read_manifest(source.path)
        if "world" not in manifest.tables:
            raise InputDataError(
                f"{source.display}: artifact has no 'world' table (it has {', '.join(sorted(manifest.tables))})"
            )
        return table_path(source.path, "world")
    except ArtifactError as err:
        raise InputDataError(f"{source.display}: not a world artifact: {err}") from None


def read_world(source: SourceFile, config: IngestConfig) -> Batches:
    """The generator's artifact: ``answer`` becomes the oracle label, task/difficulty/choices metadata."""
    return _parquet_batches(_world_table(source), source, config)


# ---------------------------------------------------------------------------- JSON / JSONL
def _bad_text(value: Any, where: str = "") -> str | None:
    """Where a parsed JSON value holds text that is not valid UTF-8 (lone surrogates), else None."""
    if isinstance(value, str):
        problem = utf8_problem(value)
        return f"{where or 'value'}: {problem}" if problem else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if (found := _bad_text(item, f"{where}.{key}" if where else str(key))) is not None:
            return found
    return None


def _is_jsonl(path: Path) -> bool:
    """``.jsonl``, or a ``.json`` whose first line is a complete row object (not an id -> row map)."""
    if path.suffix.lower() == ".jsonl":
        return True
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8-sig", "surrogateescape").strip()
    try:
        value = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(value, dict) and not all(isinstance(v, dict) for v in value.values())


Item = tuple[str, str | None, Any]  # (position, mapping key, parsed object or RowReject)


def _jsonl_items(path: Path, display: str) -> Iterator[Item]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            position = f"line {number}"
            try:
                value = json.loads(line.decode("utf-8", "surrogateescape"))
            except json.JSONDecodeError as err:
                yield position, None, RowReject("row_parse", f"{position}: not JSON ({err.msg})")
                continue
            except RecursionError:  # a row nested thousands deep: rejected like any unreadable row
                yield position, None, RowReject("row_parse", f"{position}: JSON nested too deeply to read")
                continue
            yield position, None, value


def _json_document_items(path: Path, display: str) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as handle:
        try:
            for index, (key, value) in enumerate(iter_json_rows(handle)):
                yield f"{index}" if key is None else key, key, value
        except JsonStreamError as err:
            raise InputDataError(f"{display}: not a valid JSON list or mapping of rows ({err})") from None


def _json_rows(items: Iterator[Item], source: SourceFile, config: IngestConfig) -> Iterator[RawRow]:
    plan: ColumnPlan | None = None
    for position, key, value in items:
        locator = f"{source.display}:{position}"
        if plan is None and not isinstance(value, dict):
            what = value.detail if isinstance(value, RowReject) else f"a JSON {type(value).__name__}"
            raise InputDataError(
                f"{source.display}: the first row is {what}, not a JSON object: is this a JSON/JSONL dataset?"
            )
        if isinstance(value, RowReject):
            yield RawRow(locator, error=value)
            continue
        if not isinstance(value, dict):
            yield RawRow(
                locator, error=RowReject("row_parse", f"row is a JSON {type(value).__name__}, not an object")
            )
            continue
        if (bad := _bad_text(value)) is not None:
            yield RawRow(locator, error=RowReject("text_encoding", bad))
            continue
        if plan is None:
            plan = plan_columns(source.layout, dict.fromkeys(value), config.columns, source.display)
        # Rows of one file may mix `image` and `images`: unless configured, each row's own key counts.
        row_plan = plan
        if config.columns.images is None:
            own = next((k for k in LAYOUT_ROLES[source.layout].images if k in value), None)
            if own is not None and (own,) != plan.images:
                row_plan = replace(plan, images=(own,), excluded=plan.excluded | {own})
        extras = {k: v for k, v in value.items() if k not in row_plan.excluded}
        row = _raw_row(value, row_plan, source, locator, extras)
        if row.source_id is None and key is not None:
            row.source_id = key
        yield row


def read_json(source: SourceFile, config: IngestConfig) -> Batches:
    try:
        items = (_jsonl_items if _is_jsonl(source.path) else _json_document_items)(
            source.path, source.display
        )
        yield from _batched(_json_rows(items, source, config), config.read_batch_rows)
    except OSError as err:
        raise InputDataError(f"{source.display}: cannot read ({err.strerror or err})") from None


# ---------------------------------------------------------------------------- folder (CSV)
def _csv_rows(source: SourceFile, config: IngestConfig) -> Iterator[RawRow]:
    with source.path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise InputDataError(f"{source.display}: empty CSV: the first line must name the columns")
        plan = plan_columns(source.layout, dict.fromkeys(header), config.columns, source.display)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                locator = f"{source.display}:line {reader.line_num}"
                yield RawRow(locator, error=RowReject("row_parse", f"line {reader.line_num}: {err}"))
                continue
            locator = f"{source.display}:line {reader.line_num}"
            record.pop(None, None)  # cells beyond the header
            if (bad := _bad_text(record)) is not None:
                yield RawRow(locator, error=RowReject("text_encoding", bad))
                continue
            # An empty cell is "no value" (no answer, no id); an empty question stays "" so that its
            # rejection says question_empty.
            record = {k: (None if v == "" and k != plan.problem else v) for k, v in record.items()}
            extras = {k: v for k, v in record.items() if k not in plan.excluded}
            yield _raw_row(record, plan, source, locator, extras)


def read_folder(source: SourceFile, config: IngestConfig) -> Batches:
    """A plain image folder indexed by ``questions.csv`` (or ``questions.jsonl``)."""
    if source.path.suffix.lower() == ".csv":
        try:
            yield from _batched(_csv_rows(source, config), config.read_batch_rows)
        except OSError as err:
            raise InputDataError(f"{source.display}: cannot read ({err.strerror or err})") from None
    else:
        yield from read_json(source, config)


READERS: dict[str, Callable[[SourceFile, IngestConfig], Batches]] = {
    "mmupt_parquet": read_parquet,
    "geoqa_r1v": read_parquet,
    "hf_parquet": read_parquet,
    "json": read_json,
    "folder": read_folder,
    "world": read_world,
}


def read_rows(source: SourceFile, config: IngestConfig) -> Batches:
    """Batches of raw rows from one planned source file."""
    return READERS[source.layout](source, config)


def count_rows(source: SourceFile) -> int | None:
    """Rows in a Parquet source from its footer (for the progress bar); None where unknown."""
    try:
        if source.layout == "world":
            return pq.ParquetFile(_world_table(source)).metadata.num_rows
        if source.layout in ("mmupt_parquet", "geoqa_r1v", "hf_parquet"):
            return pq.ParquetFile(source.path).metadata.num_rows
    except (OSError, pa.ArrowException, ValueError, InputDataError):
        return None
    return None
