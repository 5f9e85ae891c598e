"""Config of the ingest stage: how user datasets are read, checked and normalised into ``samples``.

Almost every field changes which rows are accepted or what their bytes look like, so the config
is part of the ingest artifact's cache key (``config_hash``; ``progress`` and ``read_batch_rows``
are left out of it, they cannot change the output). The config file is this one flat
mapping (``columns`` is the only nested section), e.g.::

    columns: {problem: question, answer: gt}
    splits: [unlabeled]
    max_pixels: 1003520
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from schemas.base import StrictModel

LAYOUTS: tuple[str, ...] = ("mmupt_parquet", "geoqa_r1v", "hf_parquet", "json", "folder", "world")

QWEN_PATCH = 28  # Qwen2/2.5-VL: 14 px patches merged 2x2; a side shorter than this cannot be patched


class ColumnMap(StrictModel):
    """Source column (or JSON key) to read for each role, when the layout's usual names are not used.

    Unset roles fall back to the layout's candidates (e.g. the question is looked for in
    ``problem``, ``question``, ``query``). A name given here must exist, or the file is refused.
    """

    problem: str | None = Field(None, description="Column holding the question text.")
    answer: str | None = Field(None, description="Column holding the label; it becomes oracle_answer.")
    images: list[str] | None = Field(
        None, description="Image column(s): bytes, {bytes, path} structs, paths, or lists of those."
    )
    solution: str | None = Field(None, description="R1-V style solution; the label is taken from <answer>.")
    id: str | None = Field(None, description="The source's own row id, kept in metadata.")

    @field_validator("images", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class IngestConfig(StrictModel):
    """How ``mmupt ingest`` reads, checks and normalises user data."""

    # ---- reading
    columns: ColumnMap = Field(default_factory=ColumnMap, description="Column-name overrides per role.")
    splits: list[str] | None = Field(
        None,
        description="Keep only rows of these splits (world 'split' column, a 'split' column/key, or the "
        "Hugging Face shard name '<split>-00000-of-00001.parquet'). Rows whose split is unknown are kept. "
        "None keeps every split.",
    )
    image_root: Path | None = Field(
        None,
        description="Extra base folder for relative image paths (tried after the annotation file's folder "
        "and the dataset folder). Image paths must resolve inside one of these folders.",
    )
    read_batch_rows: int = Field(
        64,
        ge=1,
        le=4096,
        description="Rows decoded from a source at a time; bounds memory with large images.",
    )
    write_batch_rows: int = Field(
        256, ge=1, le=65536, description="Accepted rows buffered per Parquet write."
    )
    progress: bool = Field(True, description="Show a progress bar (only ever on a terminal).")

    # ---- images
    min_pixels: int = Field(
        56 * 56, ge=QWEN_PATCH * QWEN_PATCH, description="Smaller images are upscaled to this area."
    )
    max_pixels: int = Field(
        1280 * QWEN_PATCH * QWEN_PATCH,
        ge=QWEN_PATCH * QWEN_PATCH,
        description="Larger images are downscaled.",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Decoded area above which an image is refused as a decompression bomb (checked from the "
        "header, before decoding). Pillow's own guard (89 M pixels) also applies.",
    )
    max_image_bytes: int = Field(
        50 * 2**20, ge=1, description="Encoded size above which an image is refused."
    )
    max_aspect_ratio: float = Field(
        200.0, gt=1.0, description="Long/short side ratio above which an image is refused (Qwen-VL's limit)."
    )
    max_images: int = Field(16, ge=1, description="Rows with more images are refused.")
    png_compress_level: int = Field(
        3, ge=0, le=9, description="zlib level of the re-encoded PNGs: 1-3 is several times faster than 9."
    )

    # ---- text
    max_question_chars: int = Field(
        8000, ge=1, description="Longer questions (after normalisation) are refused."
    )

    @model_validator(mode="after")
    def _pixel_range(self) -> IngestConfig:
        if self.min_pixels > self.max_pixels:
            raise ValueError(
                f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels}): "
                "set min_pixels <= max_pixels"
            )
        return self
