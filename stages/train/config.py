"""Resolve the DeepSpeed JSON against the TrainConfig, and refuse combinations that cannot run.

The JSON (``deploy/deepspeed/*.json``) owns what is specific to DeepSpeed: the ZeRO stage,
precision, offload, buckets. The TrainConfig owns the numbers the algorithm defines: batch sizes
and gradient clipping are written into the JSON here (its ``"auto"`` values), so they are never
stated twice. Every check runs on the driver, before Ray starts a worker: a bad combination is a
one-line ``ConfigError`` in seconds, not a stack trace from eight GPUs after model loading.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from mmupt.errors import ConfigError
from schemas.train import TrainConfig

AUTO = "auto"


def load_deepspeed_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: DeepSpeed config not found (trainer.deepspeed); see deploy/deepspeed/")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a JSON object")
    return data


def sequences_per_update(config: TrainConfig) -> int:
    """Trained sequences one worker contributes to one optimizer step (before skipped groups)."""
    return config.update.prompts_per_update // config.trainer.num_workers * config.n_train


def resolve_deepspeed(config: TrainConfig, path: Path | None = None) -> dict[str, Any]:
    """The DeepSpeed config dict every worker passes to ``deepspeed.initialize``.

    ``gradient_accumulation_steps`` is nominal: the update loop sets the accumulation boundary
    itself, because skipped groups make the number of micro-batches vary from step to step.
    """
    path = path or config.trainer.deepspeed_path()
    ds = copy.deepcopy(load_deepspeed_json(path))
    check_deepspeed(ds, config, str(path))
    micro = config.update.micro_batch_size
    accumulation = max(1, math.ceil(sequences_per_update(config) / micro))
    derived = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "train_batch_size": micro * accumulation * config.trainer.num_workers,
        "gradient_clipping": config.optim.grad_clip,
    }
    for key, value in derived.items():
        given = ds.get(key, AUTO)
        if given != AUTO and given != value:
            raise ConfigError(
                f'{path}: {key} is {given!r} but the train config implies {value!r}: set it to "auto" '
                "(batch sizes and clipping come from the train config)"
            )
        ds[key] = value
    ds.setdefault("steps_per_print", 10**9)  # DeepSpeed's own progress lines duplicate ours
    ds.setdefault("zero_allow_untested_optimizer", True)  # the client optimizer is torch's AdamW
    zero = ds.get("zero_optimization", {})
    if any(
        zero.get(key, {}).get("device", "none") != "none" for key in ("offload_optimizer", "offload_param")
    ):
        ds.setdefault("zero_force_ds_cpu_optimizer", False)  # torch AdamW on offloaded states (no JIT build)
    return ds


def check_deepspeed(ds: dict[str, Any], config: TrainConfig, source: str) -> None:
    """Raise ``ConfigError`` for a DeepSpeed config that this job cannot run (rule + fix)."""
    use_gpu = config.trainer.use_gpu
    for block in ("optimizer", "scheduler"):
        if block in ds:
            raise ConfigError(
                f"{source}: has a {block!r} block, but the optimizer and schedule come from the train config "
                "(optim.*): remove it"
            )
    if _enabled(ds, "fp16"):
        raise ConfigError(
            f"{source}: fp16 is not supported (its loss scaler silently skips overflowing steps): use bf16 on GPU"
        )
    if _enabled(ds, "bf16") and not use_gpu:
        raise ConfigError(
            f"{source}: bf16.enabled is true but trainer.use_gpu is false: bf16 training needs a GPU; "
            "for CPU runs use deploy/deepspeed/zero2_cpu.json (fp32)"
        )
    zero = ds.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise ConfigError(f"{source}: zero_optimization must be an object")
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"{source}: zero_optimization.stage must be 0, 1, 2 or 3, got {stage!r}")
    for key in ("offload_optimizer", "offload_param"):
        offload = zero.get(key)
        if not offload:
            continue
        device = offload.get("device", "none")
        if device == "none":
            continue
        if device not in ("cpu", "nvme"):
            raise ConfigError(
                f"{source}: zero_optimization.{key}.device must be none, cpu or nvme, got {device!r}"
            )
        if not use_gpu:
            raise ConfigError(
                f"{source}: zero_optimization.{key} moves state off the GPU, but trainer.use_gpu is false "
                "(the state is already in host memory): remove the offload block for CPU runs"
            )
        if key == "offload_param" and stage != 3:
            raise ConfigError(
                f"{source}: zero_optimization.offload_param needs ZeRO stage 3 (stage is {stage}): set stage 3 "
                "or use offload_optimizer"
            )
        if key == "offload_optimizer" and stage not in (1, 2, 3):
            raise ConfigError(
                f"{source}: zero_optimization.offload_optimizer needs ZeRO stage 1-3 (stage is {stage})"
            )
        if device == "nvme" and not offload.get("nvme_path"):
            raise ConfigError(f"{source}: zero_optimization.{key}.device nvme needs nvme_path")
    if stage == 3 and config.model.lora.enabled:
        raise ConfigError(
            f"{source}: LoRA with ZeRO-3 is not supported by this trainer (adapters on partitioned weights): "
            "use ZeRO-2 (deploy/deepspeed/zero2.json), the adapters are small"
        )


def _enabled(ds: dict[str, Any], key: str) -> bool:
    block = ds.get(key)
    return isinstance(block, dict) and block.get("enabled") is True


def precision(ds: dict[str, Any]) -> str:
    """Weights dtype of the policy, the reference and the rollout engine."""
    return "bfloat16" if _enabled(ds, "bf16") else "float32"


def zero_stage(ds: dict[str, Any]) -> int:
    return int(ds.get("zero_optimization", {}).get("stage", 0))
