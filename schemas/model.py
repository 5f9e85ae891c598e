"""Config of the tiny Qwen2.5-VL-architecture model that the embedded default trains from scratch."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import StrictModel


class TinyModelConfig(StrictModel):
    """Sizes of the tiny model. The architecture is Qwen2.5-VL's, so every code path that serves
    it (processor, engine, SFT, GRPO) serves a real Qwen2.5-VL checkpoint unchanged."""

    vocab_size: int = Field(
        1024, ge=300, description="BPE vocabulary trained on the world's text (plus specials)."
    )
    hidden_size: int = Field(128, ge=32, description="Text model width.")
    intermediate_size: int = Field(384, ge=32, description="Text MLP width.")
    num_hidden_layers: int = Field(4, ge=1, description="Text decoder layers.")
    num_attention_heads: int = Field(4, ge=1, description="Text attention heads.")
    num_key_value_heads: int = Field(2, ge=1, description="Grouped-query KV heads; must divide the heads.")
    vision_hidden_size: int = Field(96, ge=16, description="Vision tower width.")
    vision_depth: int = Field(2, ge=1, description="Vision transformer blocks.")
    vision_num_heads: int = Field(4, ge=1, description="Vision attention heads.")
    patch_size: int = Field(14, ge=2, description="Vision patch side in pixels (Qwen2.5-VL: 14).")
    spatial_merge_size: int = Field(2, ge=1, description="Patches merged per side into one LLM token.")
    max_position_embeddings: int = Field(
        2048, ge=128, description="Longest sequence the rotary tables cover."
    )
    min_pixels: int = Field(56 * 56, ge=1, description="Image processor: smallest image area after resizing.")
    max_pixels: int = Field(
        112 * 112, ge=1, description="Image processor: largest image area after resizing."
    )
    image_mean: list[float] = Field(
        [1.0, 1.0, 1.0],
        min_length=3,
        max_length=3,
        description=(
            "Image processor normalisation mean. 1.0 maps the world's white background to zero input: with "
            "CLIP's mean the from-scratch patch embedding learns a large constant response to the background "
            "that drowns the objects after RMSNorm, and the model never learns to look (measured in "
            "benchmarks/REPORT.md)."
        ),
    )
    image_std: list[float] = Field(
        [0.5, 0.5, 0.5], min_length=3, max_length=3, description="Normalisation std."
    )
    seed: int = Field(0, description="Initialisation seed.")

    @model_validator(mode="after")
    def _check_shapes(self) -> TinyModelConfig:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be divisible by num_key_value_heads")
        head_dim = self.hidden_size // self.num_attention_heads
        if head_dim % 8:
            raise ValueError(
                f"head_dim (hidden_size / heads = {head_dim}) must be a multiple of 8 for M-RoPE"
            )
        if self.vision_hidden_size % self.vision_num_heads:
            raise ValueError("vision_hidden_size must be divisible by vision_num_heads")
        if self.min_pixels > self.max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        return self

    @property
    def mrope_section(self) -> list[int]:
        """Split of the rotary half-dimension over (time, height, width), in Qwen2.5-VL's 1:1.5:1.5 ratio."""
        half = self.hidden_size // self.num_attention_heads // 2
        temporal = half // 4
        rest = half - temporal
        return [temporal, rest // 2, rest - rest // 2]
