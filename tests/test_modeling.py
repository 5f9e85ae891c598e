"""Tokenizer, processor and model round-trip offline from a local directory."""

from __future__ import annotations

import json

import pytest
import torch

from mmupt.errors import ModelLoadError
from mmupt.modeling.inputs import encode, prompt_text, training_batch
from mmupt.modeling.loader import load_model_and_processor
from mmupt.modeling.processor import ImageOnlyQwenVLProcessor
from tests.conftest import png


def test_round_trip_offline(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, processor = load_model_and_processor(tiny_model_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert isinstance(processor, ImageOnlyQwenVLProcessor)
    text = prompt_text(processor, "How many red circles?", 1)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert "<|vision_start|><|image_pad|><|vision_end|>How many red circles?" in text

    inputs = encode(processor, [text], [[png(dot="red")]])
    # 112 px / 14 px patches = 8x8 patches, merged 2x2 -> 16 image tokens.
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == 16
    with torch.no_grad():
        before = model(**inputs).logits

    model.save_pretrained(tmp_path, safe_serialization=True)
    processor.save_pretrained(tmp_path)
    assert (
        json.loads((tmp_path / "processor_config.json").read_text())["processor_class"]
        == "Qwen2_5_VLProcessor"
    )
    model2, processor2 = load_model_and_processor(tmp_path)
    with torch.no_grad():
        after = model2(**encode(processor2, [text], [[png(dot="red")]])).logits
    torch.testing.assert_close(before, after)
    assert (
        processor2.tokenizer("a \\boxed{3}")["input_ids"] == processor.tokenizer("a \\boxed{3}")["input_ids"]
    )


def test_tokenizer_is_byte_level(tiny_model_dir):
    _, processor = load_model_and_processor(tiny_model_dir)
    text = "Ünïcode ∑ never seen before: 42 \\frac{1}{2}"
    ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert processor.tokenizer.decode(ids) == text


def test_training_batch_masks_prompt(tiny_model_dir):
    model, processor = load_model_and_processor(tiny_model_dir)
    prompts = [
        prompt_text(processor, "How many?", 1),
        prompt_text(processor, "What is the sum of the numbers?", 1),
    ]
    batch = training_batch(processor, prompts, [[png()], [png("red")]], [[50, 60, 70], [80]])
    assert batch["response_mask"].sum(dim=1).tolist() == [3, 1]
    assert (batch["labels"] != -100).sum().item() == 4
    assert batch["input_ids"][0][batch["response_mask"][0].bool()].tolist() == [50, 60, 70]
    batch.pop("response_mask")
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_missing_or_broken_model_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        load_model_and_processor(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_model_and_processor(tmp_path)
