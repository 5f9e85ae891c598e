"""A Qwen2.5-VL processor that works without torchvision.

transformers' ``Qwen2_5_VLProcessor`` insists on a video processor, and the video processor needs
torchvision, which has no CPU build that imports here. ``ImageOnlyQwenVLProcessor`` is the same
processor with the video half removed: the image path (the PIL image processor + image-token
expansion) is unchanged. It is saved with ``processor_class: Qwen2_5_VLProcessor`` so that where
torchvision exists, ``AutoProcessor`` loads the standard class from the same directory.

Note: on machines without torchvision ``AutoProcessor`` silently returns just the tokenizer, so
always load through ``load_processor`` (or this class) explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer, ProcessorMixin
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

IMAGE_PROCESSOR_FILE = "preprocessor_config.json"


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` minus the video processor (see module docstring)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        # Skip Qwen2_5_VLProcessor.__init__, which requires a video processor.
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs) -> ImageOnlyQwenVLProcessor:  # type: ignore[override]
        directory = Path(directory)
        config = json.loads((directory / IMAGE_PROCESSOR_FILE).read_text(encoding="utf-8"))
        image_processor = Qwen2VLImageProcessorPil(**_image_processor_kwargs(config))
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        return cls(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
        )

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> list[str]:  # type: ignore[override]
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(save_directory)
        self.image_processor.save_pretrained(save_directory)
        processor_config = {"processor_class": "Qwen2_5_VLProcessor"}
        (save_directory / "processor_config.json").write_text(json.dumps(processor_config, indent=2))
        return [str(save_directory)]


_IMAGE_PROCESSOR_KEYS = (
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "min_pixels",
    "max_pixels",
    "image_mean",
    "image_std",
    "do_resize",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "do_convert_rgb",
    "size",
)


def _image_processor_kwargs(config: dict) -> dict:
    """The saved image-processor settings this PIL backend understands (real checkpoints carry more)."""
    kwargs = {key: config[key] for key in _IMAGE_PROCESSOR_KEYS if key in config}
    size = kwargs.get("size") or {}
    if "min_pixels" in kwargs or "max_pixels" in kwargs:
        size = {
            "shortest_edge": kwargs.pop("min_pixels", size.get("shortest_edge")),
            "longest_edge": kwargs.pop("max_pixels", size.get("longest_edge")),
        }
    if size:
        kwargs["size"] = size
    return kwargs


def build_image_processor(
    patch_size: int,
    merge_size: int,
    min_pixels: int,
    max_pixels: int,
    image_mean: list[float] | None = None,
    image_std: list[float] | None = None,
):
    extra = {}
    if image_mean is not None:
        extra["image_mean"] = image_mean
    if image_std is not None:
        extra["image_std"] = image_std
    return Qwen2VLImageProcessorPil(
        patch_size=patch_size,
        merge_size=merge_size,
        temporal_patch_size=2,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        **extra,
    )
