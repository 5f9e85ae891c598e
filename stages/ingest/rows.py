"""Turn one ``RawRow`` into a ``samples`` row, or say why not: text checks, ids, dedup.

The checks run cheapest first (text, counts, placeholders, paths) so a bad row costs no image
decoding, and duplicates are caught from the source bytes before any decoding too.

The row id is ``sha256(source image bytes + normalised question)[:16]``: hashing the *source*
bytes (not the re-encoded PNG) keeps ids stable when resize settings or the Pillow version
change, and lets a duplicate be dropped without decoding it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from schemas.ingest import IngestConfig
from stages.ingest.images import normalise_image
from stages.ingest.paths import read_image_file, resolve_image_path
from stages.ingest.records import ImageRef, RawRow, RowReject, SourceFile

PLACEHOLDER = "<image>"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls except \t \n \r
_TAGGED_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


# ---------------------------------------------------------------------------- text
def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def utf8_problem(text: str) -> str | None:
    """None if ``text`` encodes as UTF-8, else where it does not.

    Undecodable source bytes arrive as lone surrogates (readers decode with ``surrogateescape``),
    and JSON escapes like ``\\ud800`` produce them too; neither can be written to Parquet.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        char = ord(text[err.start])
        if 0xDC80 <= char <= 0xDCFF:
            return f"byte 0x{char - 0xDC00:02x} at character {err.start} is not UTF-8"
        return f"lone surrogate U+{char:04X} at character {err.start}"
    return None


def repair_text(text: str) -> str:
    """``text`` with anything that is not valid UTF-8 replaced by U+FFFD (for labels and metadata)."""
    return text.encode("utf-8", "replace").decode("utf-8") if utf8_problem(text) else text


def normalise_question(value: Any, max_chars: int) -> str:
    """The question as stored: NFC, ``\\n`` line ends, no control characters, stripped."""
    if _is_missing(value):
        raise RowReject("question_missing", "question is null or NaN")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RowReject("text_encoding", f"question byte {err.start} is not UTF-8") from None
    if not isinstance(value, str):
        raise RowReject("question_type", f"question is a {type(value).__name__}, not text")
    if problem := utf8_problem(value):
        raise RowReject("text_encoding", f"question: {problem}")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text).strip()
    if not text:
        raise RowReject("question_empty", "question is empty after stripping whitespace")
    if len(text) > max_chars:
        raise RowReject(
            "question_too_long", f"question has {len(text)} characters > max_question_chars {max_chars}"
        )
    return text


def check_placeholders(problem: str, n_images: int) -> None:
    """When a question places its images with ``<image>``, it must place every one exactly once."""
    count = problem.count(PLACEHOLDER)
    if count and count != n_images:
        raise RowReject(
            "placeholder_mismatch",
            f"question has {count} {PLACEHOLDER} placeholder(s), row has {n_images} image(s)",
        )


def clean_answer(value: Any) -> str | None:
    """A label as text (``oracle_answer``), or None when there is none."""
    if _is_missing(value):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = repair_text(str(value)).strip()
    return text or None


def tagged_answer(solution: Any) -> str | None:
    """The last ``<answer>...</answer>`` of an R1-V style solution.

    >>> tagged_answer("<think>3+4</think> <answer> 7 </answer>")
    '7'
    """
    if not isinstance(solution, str):
        return None
    found = _TAGGED_ANSWER.findall(solution)
    return clean_answer(found[-1]) if found else None


# ---------------------------------------------------------------------------- ids and metadata
def row_id(images: list[bytes], problem: str) -> str:
    """Content hash of a row; whitespace runs in the question do not make a row new."""
    digest = hashlib.sha256()
    for data in images:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    digest.update(b"\x00question\x00")
    digest.update(" ".join(problem.split()).encode("utf-8"))
    return digest.hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)  # dates, decimals


def metadata_json(fields: dict[str, Any]) -> str | None:
    """The row's extras as a JSON object (null fields left out), or None when there are none."""
    kept = {key: _jsonable(value) for key, value in fields.items() if not _is_missing(value)}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True) if kept else None


class Deduper:
    """Remembers accepted row ids (16 hex chars each: ~100 B a row, 10 MB per 100k rows)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._source_ids: set[tuple[str, str]] = set()

    def seen(self, rid: str) -> bool:
        return rid in self._ids

    def accept(self, rid: str, source: str, source_id: str | None) -> bool:
        """Record an accepted row; True when its source id was already used by another row of that file."""
        self._ids.add(rid)
        if source_id is None:
            return False
        key = (source, source_id)
        repeated = key in self._source_ids
        self._source_ids.add(key)
        return repeated


# ---------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class Accepted:
    row: dict[str, Any]  # one samples row
    resized: int  # images whose size changed
    repeated_source_id: bool


@dataclass(frozen=True)
class Duplicate:
    row_id: str


def _image_bytes(ref: ImageRef, source: SourceFile, config: IngestConfig) -> bytes:
    if ref.data is not None:
        return ref.data
    if ref.path is None:
        raise RowReject("image_missing", "an image entry has neither bytes nor a path")
    path = resolve_image_path(ref.path, source.bases, source.roots)
    return read_image_file(path, config.max_image_bytes)


def validate_row(
    raw: RawRow, source: SourceFile, config: IngestConfig, dedup: Deduper
) -> Accepted | Duplicate:
    """Check and normalise one row; raises ``RowReject`` with the first problem found."""
    if raw.error is not None:
        raise raw.error
    problem = normalise_question(raw.problem, config.max_question_chars)
    if not raw.images:
        raise RowReject("image_missing", "the row has no image")
    if len(raw.images) > config.max_images:
        raise RowReject("too_many_images", f"{len(raw.images)} images > max_images {config.max_images}")
    check_placeholders(problem, len(raw.images))
    originals = [_image_bytes(ref, source, config) for ref in raw.images]
    rid = row_id(originals, problem)
    if dedup.seen(rid):
        return Duplicate(rid)
    images = []
    for position, data in enumerate(originals):
        try:
            images.append(normalise_image(data, config))
        except RowReject as err:
            if len(originals) > 1:
                err.detail = f"image {position}: {err.detail}"
            raise
    extras = dict(raw.extras)
    if raw.source_id is not None:
        extras["source_id"] = raw.source_id
    if raw.split is not None:
        extras["split"] = raw.split
    paths = [ref.path for ref in raw.images if ref.data is None and ref.path is not None]
    if paths:
        extras["image_paths"] = paths
    repeated = dedup.accept(rid, source.display, raw.source_id)
    if repeated:
        extras["source_id_repeated"] = True
    row = {
        "id": rid,
        "images": [image.png for image in images],
        "image_widths": [image.width for image in images],
        "image_heights": [image.height for image in images],
        "problem": problem,
        "oracle_answer": clean_answer(raw.answer),
        "source": source.display,
        "metadata": metadata_json(extras),
    }
    return Accepted(row, sum(image.resized for image in images), repeated)
