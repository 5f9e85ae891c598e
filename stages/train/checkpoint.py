"""Checkpoints: DeepSpeed state for resuming, the final model in Hugging Face format for everyone else.

DeepSpeed state (``<out>/checkpoints/step-000040/``: weights, ZeRO optimizer partitions, LR schedule)
is saved by every worker; the client state beside it holds the step, the sampler position, the seeds
and the job's counters. Nothing else needs saving: every random draw of the job is seeded from
``(seed, step, rank)``, so the RNG "state" at a step boundary is the step number itself.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import ProcessorMixin

from mmupt.store import write_text_atomic
from stages.train.rollout import gathered_parameters

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
TAG = re.compile(r"^step-(\d{6,})$")


def tag_for(step: int) -> str:
    return f"step-{step:06d}"


def saved_steps(checkpoint_dir: Path) -> list[int]:
    """Steps with a complete checkpoint (DeepSpeed's ``latest`` is written after the state)."""
    if not checkpoint_dir.is_dir():
        return []
    steps = []
    for child in checkpoint_dir.iterdir():
        match = TAG.match(child.name)
        if match and (child / "client_state.json").is_file():
            steps.append(int(match.group(1)))
    return sorted(steps)


def latest_step(checkpoint_dir: Path) -> int | None:
    steps = saved_steps(checkpoint_dir)
    return steps[-1] if steps else None


def save(
    engine: Any, checkpoint_dir: Path, step: int, client_state: dict[str, Any], keep: int, rank: int
) -> None:
    """Save DeepSpeed state of ``step`` on every rank; rank 0 marks it complete and prunes old ones."""
    import torch.distributed as dist

    tag = tag_for(step)
    engine.save_checkpoint(str(checkpoint_dir), tag=tag, client_state={"mmupt": client_state})
    if dist.is_initialized():
        dist.barrier()  # every rank's partition is on disk before the checkpoint counts as complete
    if rank == 0:
        marker = checkpoint_dir / tag / "client_state.json"
        # the marker that makes the checkpoint count: whole or absent, never a truncated file
        write_text_atomic(marker, json.dumps(client_state, indent=2, sort_keys=True))
        for old in saved_steps(checkpoint_dir)[:-keep]:
            shutil.rmtree(checkpoint_dir / tag_for(old), ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()


def load(engine: Any, checkpoint_dir: Path, step: int) -> dict[str, Any]:
    """Restore weights, optimizer and LR schedule of ``step``; returns the client state."""
    path, client = engine.load_checkpoint(
        str(checkpoint_dir), tag=tag_for(step), load_optimizer_states=True, load_lr_scheduler_states=True
    )
    if path is None:
        raise RuntimeError(f"{checkpoint_dir / tag_for(step)}: DeepSpeed could not load this checkpoint")
    return dict(client.get("mmupt", {}))


def read_client_state(checkpoint_dir: Path, step: int) -> dict[str, Any]:
    return json.loads((checkpoint_dir / tag_for(step) / "client_state.json").read_text(encoding="utf-8"))


def save_hf_model(
    module: torch.nn.Module, processor: ProcessorMixin, out_dir: Path, zero_stage: int, rank: int, lora: bool
) -> None:
    """The trained policy as a plain HF checkpoint (safetensors + processor files), written by rank 0.

    LoRA adapters are merged into the weights so the result loads like any checkpoint. Under ZeRO-3
    every rank takes part in gathering the parameters; only rank 0 writes.
    """
    with torch.no_grad(), gathered_parameters(module, zero_stage):
        if rank != 0:
            return
        model = module.merge_and_unload() if lora else module
        tmp = out_dir.with_name(f".{out_dir.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
