"""Model construction and loading: the tiny Qwen2.5-VL factory and the one loader for any checkpoint."""

from __future__ import annotations

import os


def name_deepspeed_accelerator() -> None:
    """Tell DeepSpeed it runs on the CPU when there is no GPU, before anything imports it.

    transformers imports DeepSpeed (through accelerate) whenever it is installed, and DeepSpeed
    picks its accelerator once, at import: without a GPU it warns "Setting accelerator to CPU. If
    you have GPU ..." in every process that loads a model. Naming the CPU says the same silently.
    A machine with a GPU, or a user's own ``DS_ACCELERATOR``, is left alone.
    """
    if "DS_ACCELERATOR" in os.environ:
        return
    import torch

    if not torch.cuda.is_available():
        os.environ["DS_ACCELERATOR"] = "cpu"


name_deepspeed_accelerator()  # every module of this package imports transformers
