"""Build the tiny Qwen2.5-VL-architecture model of the embedded default, from config alone.

``create_tiny_model`` trains a tokenizer on the given text, builds a randomly initialised
``Qwen2_5_VLForConditionalGeneration`` of the configured size, and saves model + processor as a
normal Hugging Face checkpoint directory. From then on it is loaded like any real checkpoint
(``mmupt.modeling.loader.load_model_and_processor``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from mmupt.modeling.processor import ImageOnlyQwenVLProcessor, build_image_processor
from mmupt.modeling.tokenizer import IM_END, IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, train_tokenizer
from schemas.model import TinyModelConfig


def qwen_config(cfg: TinyModelConfig, token_ids: dict[str, int], vocab_size: int) -> Qwen2_5_VLConfig:
    """The Qwen2.5-VL config of the tiny model (vision windowing off: images are a few patches)."""
    text = {
        "vocab_size": vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": cfg.mrope_section,
        },
        "bos_token_id": token_ids["bos"],
        "eos_token_id": token_ids[IM_END],
        "pad_token_id": token_ids["pad"],
    }
    vision = {
        "depth": cfg.vision_depth,
        "hidden_size": cfg.vision_hidden_size,
        "intermediate_size": cfg.vision_hidden_size * 2,
        "num_heads": cfg.vision_num_heads,
        "patch_size": cfg.patch_size,
        "spatial_merge_size": cfg.spatial_merge_size,
        "temporal_patch_size": 2,
        "out_hidden_size": cfg.hidden_size,
        # One window covers the whole (small) image and every block attends globally.
        "window_size": cfg.patch_size * cfg.spatial_merge_size * 64,
        "fullatt_block_indexes": list(range(cfg.vision_depth)),
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=token_ids[IMAGE_PAD],
        video_token_id=token_ids[VIDEO_PAD],
        vision_start_token_id=token_ids[VISION_START],
        vision_end_token_id=token_ids[VISION_END],
        tie_word_embeddings=True,
    )


def create_tiny_model(cfg: TinyModelConfig, texts: Iterable[str], out_dir: str | Path) -> Path:
    """Train a tokenizer on ``texts``, build a fresh tiny model, and save both to ``out_dir``."""
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    ids = {
        tok: tokenizer.convert_tokens_to_ids(tok)
        for tok in (IM_END, IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END)
    }
    ids["pad"] = tokenizer.pad_token_id
    ids["bos"] = tokenizer.pad_token_id
    image_processor = build_image_processor(
        cfg.patch_size, cfg.spatial_merge_size, cfg.min_pixels, cfg.max_pixels, cfg.image_mean, cfg.image_std
    )
    processor = ImageOnlyQwenVLProcessor(image_processor, tokenizer, chat_template=tokenizer.chat_template)
    torch.manual_seed(cfg.seed)
    model = Qwen2_5_VLForConditionalGeneration(qwen_config(cfg, ids, len(tokenizer)))
    model.generation_config.eos_token_id = ids[IM_END]
    model.generation_config.pad_token_id = ids["pad"]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir
