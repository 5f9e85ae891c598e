"""The few value types that flow between ingest's readers, checks and writer.

Readers turn every layout into ``RawRow``s (source-shaped values, nothing checked yet) so that
one set of checks in ``rows.py`` applies to every layout. A row-level problem is a ``RowReject``
with a reason code from ``REASONS``: it becomes a row of the ``rejects`` table and the run goes on.
File-level problems are ``mmupt.errors.InputDataError`` and stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASONS: dict[str, str] = {
    "row_parse": "the JSON line / element is not a JSON object",
    "text_encoding": "the question is not valid UTF-8",
    "question_missing": "no question (absent, null or NaN)",
    "question_type": "the question is not text",
    "question_empty": "the question is empty after stripping whitespace",
    "question_too_long": "the question is longer than max_question_chars",
    "placeholder_mismatch": "the number of <image> placeholders differs from the number of images",
    "image_missing": "the row has no image",
    "too_many_images": "the row has more than max_images images",
    "path_escape": "an image path points outside the dataset folder (never opened)",
    "image_not_found": "an image path does not exist",
    "image_unreadable": "an image file exists but cannot be read",
    "image_empty": "an image has zero bytes",
    "image_too_large": "an image exceeds max_image_bytes or max_image_pixels (decompression bomb)",
    "image_decode": "an image is corrupt, truncated or not an image format Pillow knows",
    "image_aspect": "an image is more elongated than max_aspect_ratio",
}
"""Reject reason codes (``rejects.reason``) and what each means; the CLI prints them."""


class RowReject(Exception):
    """One row cannot be used; ``reason`` is a code from ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reject reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageRef:
    """An image as a source holds it: inline bytes, a path to resolve, or (HF structs) both.

    Inline bytes win when present: a Hugging Face ``{bytes, path}`` struct's path is only the
    original file name and is not meant to be opened.
    """

    data: bytes | None = None
    path: str | None = None


@dataclass(frozen=True)
class SourceFile:
    """One file to read (an artifact directory for ``world``), with where its image paths may point."""

    path: Path
    display: str  # written to samples.source / rejects.source: relative to the argument's parent
    layout: str
    bases: tuple[Path, ...]  # folders relative image paths are tried against, in order
    roots: tuple[Path, ...]  # folders image paths must stay inside (resolved)
    split: str | None = None  # from a Hugging Face shard name, when there is one


@dataclass
class RawRow:
    """One row as read, before any check. ``error`` is set when the reader could not parse it."""

    locator: str  # "<source>:<position>", written to rejects.row
    problem: Any = None
    images: list[ImageRef] = field(default_factory=list)
    answer: Any = None
    source_id: str | None = None
    split: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    error: RowReject | None = None
