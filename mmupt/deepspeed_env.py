"""The environment DeepSpeed reads at import, set in one place for the driver and every worker.

Kept free of heavy imports at module level: ``flows.runtime`` imports it before any command runs.
"""

from __future__ import annotations

import os
from pathlib import Path

# Where DeepSpeed's compiled ops are cached (``make setup`` builds the CPU collective op there once:
# built inside a job it cost ~30 s of its first round on 2 cores).
TORCH_EXTENSIONS_DEFAULT = str(Path.home() / ".cache" / "mmupt" / "torch_extensions")


def torch_extensions_dir() -> str:
    """The op cache in use: the user's ``TORCH_EXTENSIONS_DIR``, else mmupt's default."""
    return os.environ.get("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS_DEFAULT)


def use_op_cache() -> None:
    """Point this process (and the processes it starts) at the op cache, unless the user chose one."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", TORCH_EXTENSIONS_DEFAULT)


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
