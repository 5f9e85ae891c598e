"""One loader for any Qwen2.5-VL checkpoint directory: the tiny model and a real 7B alike.

Loading is local only (the hub is never contacted), weights come from safetensors, and the
processor is always built explicitly (``AutoProcessor`` silently degrades to a bare tokenizer
when torchvision is missing).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, PreTrainedModel, ProcessorMixin

from mmupt.errors import ModelLoadError
from mmupt.modeling.processor import ImageOnlyQwenVLProcessor

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_model_dir(model_dir: str | Path) -> Path:
    """Fail with one clear line unless ``model_dir`` looks like a loadable HF checkpoint."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelLoadError(
            f"{path}: model directory not found (pass a local Hugging Face checkpoint directory)"
        )
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: no config.json, so this is not a Hugging Face checkpoint directory")
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(f"{path}: no *.safetensors weights (only safetensors checkpoints are loaded)")
    if not (path / "preprocessor_config.json").is_file():
        raise ModelLoadError(f"{path}: no preprocessor_config.json, so images cannot be processed")
    return path


def load_processor(model_dir: str | Path) -> ProcessorMixin:
    """The standard Qwen2.5-VL processor where torchvision exists, else the image-only one."""
    path = check_model_dir(model_dir)
    if importlib.util.find_spec("torchvision") is not None:
        try:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            if hasattr(processor, "image_processor"):
                return processor
        except Exception as err:  # noqa: BLE001 - a broken torchvision must not stop CPU users
            log.info("standard processor unavailable (%s); using the image-only processor", err)
    return ImageOnlyQwenVLProcessor.from_pretrained(path, local_files_only=True)


def load_model(model_dir: str | Path, device: str = "cpu", dtype: str = "float32") -> PreTrainedModel:
    path = check_model_dir(model_dir)
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=DTYPES[dtype], local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: cannot load the model: {err}") from None
    return model.to(device)


def load_model_and_processor(
    model_dir: str | Path, device: str = "cpu", dtype: str = "float32"
) -> tuple[PreTrainedModel, ProcessorMixin]:
    return load_model(model_dir, device, dtype), load_processor(model_dir)
