"""Shared fixtures: a tiny real model built once per session, small PNG images."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from flows.runtime import configure

configure()  # the process defaults the CLI sets, before any test imports Prefect or transformers

TOKENIZER_TEXTS = [
    "<image>How many red circles are in the image?",
    "<image>What is the sum of the two numbers in the image?",
    "I count the red circles: 3. \\boxed{3}",
    "The numbers are 4 and 7. 4 + 7 = 11. \\boxed{11}",
    "Think step by step, then give the final answer in \\boxed{}.",
] * 40


TEST_MODEL_SIZES = dict(
    vocab_size=400,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    vision_hidden_size=32,
    vision_depth=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    vision_num_heads=2,
)
"""The smallest model sizes the tests build: fast enough to create and train in seconds."""


def png(color: str = "white", size: int = 112, dot: str | None = None) -> bytes:
    image = Image.new("RGB", (size, size), color)
    if dot:
        ImageDraw.Draw(image).ellipse((10, 10, 40, 40), fill=dot)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A freshly initialised tiny Qwen2.5-VL checkpoint directory (random weights)."""
    from mmupt.modeling.factory import create_tiny_model
    from schemas.model import TinyModelConfig

    out = tmp_path_factory.mktemp("tiny-model")
    config = TinyModelConfig(**TEST_MODEL_SIZES)
    create_tiny_model(config, TOKENIZER_TEXTS, out)
    return str(out)
