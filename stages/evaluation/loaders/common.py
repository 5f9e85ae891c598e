"""Shared loading machinery: find the data files of a split, read rows, resolve images.

Every benchmark ships in two layouts (see ``../shared/benchmarks/README.md``): the authors'
repository (JSON / JSONL with image paths relative to the data file) and the Hugging Face Hub
export (``data/<split>-*.parquet`` with images embedded as ``{bytes, path}`` structs). A loader
only describes how one row becomes an ``EvalItem``; this module does the rest, so every
benchmark rejects bad rows the same way (a ``Rejected`` with a reason, never a crash).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from PIL import Image

from mmupt.errors import ConfigError, InputDataError
from mmupt.textio import json_loads, read_text
from stages.evaluation.types import EvalItem, LoadOptions, Rejected

MAX_IMAGE_BYTES = 64 << 20
"""A single image file larger than this is rejected rather than read."""


class RowProblem(Exception):
    """Raised by a row builder: the row is rejected with ``reason`` (a short code) and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DataFiles:
    kind: Literal["parquet", "json"]
    files: list[Path]
    root: Path


@dataclass
class Built:
    """A row turned into an item whose images are still references (resolved after filtering)."""

    item: EvalItem
    image_refs: list[Any] = field(default_factory=list)
    base: Path | None = None  # directory that relative image paths of this row start from


RowBuilder = Callable[[dict[str, Any], str, Path], Built]
"""(row, row label, data file) -> Built; raises ``RowProblem`` to reject the row."""


# ---------------------------------------------------------------------------- files
def _depth_glob(root: Path, suffixes: tuple[str, ...], depth: int = 3) -> list[Path]:
    found: list[Path] = []
    pattern = "*"
    for _ in range(depth):
        found.extend(p for p in root.glob(pattern) if p.is_file() and p.name.endswith(suffixes))
        pattern += "/*"
    return sorted(found)


def _matches_split(path: Path, split: str) -> bool:
    stem = path.name.split(".")[0]
    return stem == split or stem.startswith((f"{split}-", f"{split}_")) or path.parent.name == split


def find_data_files(data_path: Path, split: str, benchmark: str) -> DataFiles:
    """The files of ``split`` under ``data_path`` (a file is taken as is, whatever its name).

    Parquet wins over JSON when a folder holds both (the Hub export is self-contained).
    """
    data_path = Path(data_path)
    if data_path.is_file():
        kind = "parquet" if data_path.suffix == ".parquet" else "json"
        if data_path.suffix not in (".parquet", ".json", ".jsonl"):
            raise InputDataError(f"{data_path}: expected a .json, .jsonl or .parquet file for {benchmark}")
        return DataFiles(kind, [data_path], data_path.parent)
    if not data_path.is_dir():
        raise InputDataError(f"{data_path}: no such file or folder (the {benchmark} data)")
    parquet = [p for p in _depth_glob(data_path, (".parquet",)) if _matches_split(p, split)]
    if parquet:
        return DataFiles("parquet", parquet, data_path)
    json_files = [p for p in _depth_glob(data_path, (".json", ".jsonl")) if _matches_split(p, split)]
    if json_files:
        return DataFiles("json", json_files, data_path)
    present = [str(p.relative_to(data_path)) for p in _depth_glob(data_path, (".parquet", ".json", ".jsonl"))]
    listing = ", ".join(present[:8]) or "no .json/.jsonl/.parquet files"
    raise InputDataError(
        f"{data_path}: no {benchmark} data for split {split!r} (looked for {split}-*.parquet, {split}.json(l), "
        f"{split}_*.json(l)); found: {listing}. Set split in the config or pass the file itself"
    )


# ---------------------------------------------------------------------------- rows
def read_json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(row label, record) of a JSON list, a JSON object of records (keyed by id) or JSON Lines."""
    text = read_text(path)
    if path.suffix != ".jsonl":
        try:
            data = json_loads(text, str(path))
        except json.JSONDecodeError as err:
            if err.msg != "Extra data":  # "Extra data": several documents, i.e. JSON Lines
                raise InputDataError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
        else:
            yield from _records(path, data)
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json_loads(line, f"{path}: line {number}")
        except json.JSONDecodeError as err:
            raise InputDataError(f"{path}: line {number}: not valid JSON ({err.msg})") from None
        if isinstance(row, dict):
            yield f"{path.name}:{number}", row


def _records(path: Path, data: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(data, list):
        for index, row in enumerate(data):
            if isinstance(row, dict):
                yield f"{path.name}[{index}]", row
    elif isinstance(data, dict):
        for key, row in data.items():
            if isinstance(row, dict):
                yield f"{path.name}[{key}]", {"_key": key, **row}
    else:
        raise InputDataError(f"{path}: expected a JSON list or object of records, got {type(data).__name__}")


def read_parquet_rows(path: Path, batch_size: int = 64) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        handle = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InputDataError(f"{path}: not a readable Parquet file ({err})") from None
    index = 0
    for batch in handle.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield f"{path.name}:{index}", row
            index += 1


def read_rows(files: DataFiles) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path in files.files:
        reader = read_parquet_rows if files.kind == "parquet" else read_json_rows
        for label, row in reader(path):
            yield path, label, row


def require(row: dict[str, Any], *names: str) -> None:
    """Raise ``RowProblem('missing_field')`` naming the first absent or null field."""
    for name in names:
        if row.get(name) is None:
            raise RowProblem(
                "missing_field", f"field {name!r} is missing or null (fields: {sorted(row)[:12]})"
            )


# ---------------------------------------------------------------------------- images
def _within(path: Path, roots: Iterable[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def _read_image_file(raw: str, bases: list[Path]) -> bytes:
    relative = Path(raw)
    if relative.is_absolute():
        raise RowProblem(
            "image_path", f"absolute image path {raw!r} is not allowed; paths are relative to the data"
        )
    tried = []
    candidates = [base / relative for base in bases] + [base / "images" / relative for base in bases]
    for candidate in candidates:
        tried.append(str(candidate))
        if not _within(candidate, bases):
            raise RowProblem("image_path", f"image path {raw!r} leaves the data folder")
        if candidate.is_file():
            if candidate.stat().st_size > MAX_IMAGE_BYTES:
                raise RowProblem("image_too_large", f"{candidate}: larger than {MAX_IMAGE_BYTES >> 20} MiB")
            return candidate.read_bytes()
    raise RowProblem("image_missing", f"image file {raw!r} not found (tried {', '.join(tried[:3])})")


def image_bytes(ref: Any, bases: list[Path]) -> bytes:
    """Bytes of one image reference: a Hub ``{bytes, path}`` struct, raw bytes, or a relative path."""
    if isinstance(ref, dict):
        data = ref.get("bytes")
        if data:
            return bytes(data)
        path = ref.get("path")
        if path:
            return _read_image_file(str(path), bases)
        raise RowProblem("image_missing", "image struct has neither bytes nor path")
    if isinstance(ref, bytes | bytearray):
        return bytes(ref)
    if isinstance(ref, str) and ref.strip():
        return _read_image_file(ref.strip(), bases)
    raise RowProblem("image_missing", f"no image reference (got {type(ref).__name__})")


def check_image(data: bytes) -> None:
    """Reject undecodable bytes here, not as a crash inside the engine's batch."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception as err:  # noqa: BLE001 - PIL raises many types for bad data
        raise RowProblem("image_decode", f"image does not decode ({type(err).__name__}: {err})") from None


# ---------------------------------------------------------------------------- answers
_BOXED_GOLD_RE = re.compile(r"^\\boxed\s*\{(.*)\}$", re.DOTALL)
_MOJIBAKE_DEGREE = "\u63b3"  # "掳": UTF-8 "°" decoded as GBK, present in some MathVerse answers


def clean_gold(raw: Any) -> str:
    r"""The gold answer without stray wrappers: ``$...$``, ``\(...\)``, ``\boxed{...}``.

    Some releases (e.g. a few MATH-V answers) keep the LaTeX math delimiters or a box around the
    answer; official scripts compare the raw string, so such an item could never be answered
    correctly. The mojibake degree sign of a few MathVerse answers is repaired too.

    >>> [clean_gold(x) for x in ["$\\frac{1}{2}$", "\\boxed{5}", " 7 ", "118\u63b3T", 3]]
    ['\\frac{1}{2}', '5', '7', '118°T', '3']
    """
    text = "" if raw is None else str(raw)
    text = text.strip().replace(_MOJIBAKE_DEGREE, "°")
    for _ in range(3):
        before = text
        if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
            text = text.strip("$").strip()
        if text.startswith("\\(") and text.endswith("\\)"):
            text = text[2:-2].strip()
        boxed = _BOXED_GOLD_RE.match(text)
        if boxed:
            text = boxed.group(1).strip()
        if text == before:
            break
    return text


def letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


# ---------------------------------------------------------------------------- driver
@dataclass
class Loaded:
    items: list[EvalItem]
    rejects: list[Rejected]
    files: DataFiles
    split: str


def collect(
    files: DataFiles,
    build: RowBuilder,
    options: LoadOptions,
    *,
    subset_key: str | None,
    benchmark: str,
    rows: Iterator[tuple[Path, str, dict[str, Any]]] | None = None,
) -> Loaded:
    """Build items from rows, filter by subset, apply ``limit``, resolve and check images.

    Rows that fail become ``Rejected`` (reason codes: missing_field, bad_value, image_missing,
    image_path, image_decode, image_too_large, duplicate_id) instead of stopping the run.
    """
    items: list[EvalItem] = []
    rejects: list[Rejected] = []
    seen_ids: set[str] = set()
    seen_subsets: Counter[str] = Counter()
    wanted = set(options.subsets) if options.subsets else None
    complete_scan = True
    for path, label, row in rows if rows is not None else read_rows(files):
        if options.limit is not None and len(items) >= options.limit:
            complete_scan = False
            break
        source = str(path)
        try:
            built = build(row, label, path)
        except RowProblem as problem:
            rejects.append(Rejected(label, source, problem.reason, problem.detail))
            continue
        item = built.item
        if subset_key is not None:
            value = str(item.subset.get(subset_key))
            seen_subsets[value] += 1
            if wanted is not None and value not in wanted:
                continue
        if item.id in seen_ids:
            rejects.append(
                Rejected(item.id, source, "duplicate_id", f"id {item.id!r} appears twice ({label})")
            )
            continue
        if options.load_images:
            try:
                bases = [built.base or path.parent, path.parent, path.parent.parent, files.root]
                bases = list(dict.fromkeys(b.resolve() for b in bases))
                item.images = [image_bytes(ref, bases) for ref in built.image_refs]
                for data in item.images:
                    check_image(data)
            except RowProblem as problem:
                rejects.append(Rejected(item.id, source, problem.reason, problem.detail))
                continue
        seen_ids.add(item.id)
        items.append(item)
    if wanted is not None and complete_scan and (unknown := sorted(wanted - set(seen_subsets))):
        valid = ", ".join(sorted(seen_subsets)) or "none"
        raise ConfigError(
            f"subsets: {unknown} not found in {benchmark} {key_label(subset_key)}; valid values: {valid}"
        )
    return Loaded(items, rejects, files, options.split)


def key_label(subset_key: str | None) -> str:
    return f"field {subset_key!r}" if subset_key else "(no subset key)"
