"""Config of the embedded default: world, tiny model, and first SFT in one file."""

from __future__ import annotations

from pydantic import Field

from schemas.base import StrictModel
from schemas.model import TinyModelConfig
from schemas.sft import SFTConfig
from schemas.world import WorldConfig


class EmbeddedConfig(StrictModel):
    """Everything the embedded default needs before unsupervised rounds start."""

    world: WorldConfig = Field(default_factory=WorldConfig, description="The procedural visual-math world.")
    model: TinyModelConfig = Field(default_factory=TinyModelConfig, description="Tiny Qwen2.5-VL sizes.")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="First SFT (warm start).")
