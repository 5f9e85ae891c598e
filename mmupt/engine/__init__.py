"""Generation engines behind one interface (``mmupt.engine.base.Engine``); ``build_engine`` picks one.

Backends are imported lazily: ``hf`` pulls in transformers, ``vllm`` needs the optional vLLM
install and a GPU; importing ``mmupt.engine.base`` costs neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmupt.engine.base import Completion, Engine, GenerationRequest
from schemas.engine import EngineConfig

__all__ = ["Completion", "Engine", "GenerationRequest", "build_engine"]


def build_engine(model_dir: str | Path, config: EngineConfig | None = None, **vllm_options: Any) -> Engine:
    """An engine for ``model_dir`` with ``config.backend``.

    ``vllm_options`` (``max_model_len``, ``seed``, ...) go to ``VLLMEngine`` and are ignored by hf.
    """
    config = config or EngineConfig()
    if config.backend == "vllm":
        from mmupt.engine.vllm import VLLMEngine

        return VLLMEngine(model_dir, config, **vllm_options)
    from mmupt.engine.hf import HFEngine

    return HFEngine.from_pretrained(model_dir, config)
