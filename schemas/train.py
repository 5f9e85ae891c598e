"""Config of the MM-UPT training stage: GRPO with a majority-vote (or oracle) reward, on Ray + DeepSpeed.

The tree mirrors the code (``stages/train/``): ``data`` (the prompt sampler), ``rollout`` (the
engine), ``reward`` (vote or oracle), ``algorithm`` (the GRPO loss, ``schemas.grpo``), ``optim``,
``update`` (mini/micro-batching), ``model`` (what trains) and ``trainer`` (Ray workers, DeepSpeed
file, checkpoints). Batch sizes are counted in **prompts** (each prompt carries ``rollout.n``
responses) so a recipe reads like the paper's: rollout batch 512 prompts, update batch 128 prompts.
Derived values (sequences per micro-batch, DeepSpeed batch sizes) are computed, never copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import StrictModel
from schemas.engine import EngineConfig
from schemas.grpo import AlgorithmConfig
from schemas.vote import VoteConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class DataConfig(StrictModel):
    """Which prompts each step trains on, in an order fixed by ``trainer.seed`` and the epoch."""

    prompts_per_step: int = Field(
        512,
        ge=1,
        description=(
            "Rollout batch, in prompts: each step samples rollout.n responses for this many prompts. "
            "Must be a multiple of update.prompts_per_update."
        ),
    )
    epochs: float = Field(
        15.0,
        gt=0,
        description=(
            "Passes over the original prompts (fractions allowed). An epoch is floor(N / prompts per step) "
            "steps: the last partial batch is dropped, so no prompt appears twice in one step."
        ),
    )
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many steps (overrides epochs when smaller)."
    )
    synthetic_ratio: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "Share of each step's prompts drawn from synthetic rows (a 'synthetic' table, or rows with a "
            "parent_id); the two pools are shuffled and cycled independently. None: one pool of all rows."
        ),
    )


class RolloutConfig(StrictModel):
    """How responses are sampled (the same engine interface as synthesis and evaluation)."""

    n: int = Field(10, ge=2, description="Responses per prompt (the GRPO group and the voters).")
    temperature: float = Field(
        0.7, gt=0, description="Sampling temperature; also used for the training log-probs."
    )
    top_p: float = Field(0.99, gt=0, le=1, description="Nucleus sampling mass.")
    max_response_length: int = Field(
        2048,
        ge=1,
        description="Generated tokens per response; also the constant normaliser of loss_agg seq_mean_token_sum_norm.",
    )
    max_prompt_length: int = Field(
        2048, ge=1, description="vllm: max_model_len = max_prompt_length + max_response_length."
    )
    engine: EngineConfig = Field(
        default_factory=EngineConfig,
        description=(
            "hf: generate with the worker's current policy module (CPU or GPU). vllm: a colocated vLLM "
            "engine per worker, refreshed with the policy's weights after every update (GPU only)."
        ),
    )


class RewardConfig(StrictModel):
    """Where the reward comes from: the model's own majority (unsupervised) or the hidden labels."""

    kind: Literal["majority_vote", "oracle"] = Field(
        "majority_vote",
        description=(
            "majority_vote: MM-UPT's self-reward (stages/vote.py), no labels read. oracle: supervised GRPO, "
            "reward 1 when the extracted answer is equivalent to oracle_answer; prompts without one are skipped."
        ),
    )
    vote: VoteConfig = Field(
        default_factory=VoteConfig, description="Vote rules (also the diagnostics in oracle mode)."
    )
    teacher: Literal["online", "frozen"] = Field(
        "online",
        description=(
            "majority_vote only. online (the reference, TTRL/MM-UPT): each step's own n responses vote, so the "
            "label moves with the policy and agreeing on a constant answer is rewarded. frozen: before step 1 "
            "the starting policy samples teacher_n responses per training prompt and their vote is fixed as "
            "the label for the whole job (a round-level teacher, refreshed by the next round's model); the "
            "policy cannot move its own target."
        ),
    )
    teacher_n: int = Field(
        16, ge=2, description="frozen teacher: responses per prompt that vote on the fixed pseudo-label."
    )


class OptimConfig(StrictModel):
    """AdamW with a constant learning rate after an optional linear warm-up (the MM-UPT recipe)."""

    lr: float = Field(1e-6, gt=0, description="Learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (all trained parameters).")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    warmup_steps: int = Field(
        0, ge=0, description="Optimizer steps of linear warm-up; 0: constant from the start."
    )
    grad_clip: float = Field(
        1.0, gt=0, description="Max global gradient norm (written into the DeepSpeed config)."
    )


class UpdateConfig(StrictModel):
    """How one rollout batch becomes optimizer steps."""

    prompts_per_update: int = Field(
        128,
        ge=1,
        description=(
            "Update (mini-)batch, in prompts: one optimizer step per this many prompts, ppo_epochs times per "
            "rollout batch. Must be a multiple of trainer.num_workers (each worker takes an equal share)."
        ),
    )
    micro_batch_size: int = Field(
        4,
        ge=1,
        description="Sequences per forward/backward on one worker (gradient accumulation inside an update).",
    )


class LoRAConfig(StrictModel):
    """Low-rank adapters (peft) instead of full fine-tuning; the reference model is the adapter-free base."""

    enabled: bool = Field(False, description="Train LoRA adapters only; the final model is saved merged.")
    r: int = Field(16, ge=1, description="Adapter rank.")
    alpha: int = Field(32, ge=1, description="Adapter scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module name suffixes that get adapters (Qwen2.5-VL names; vision MLPs share some).",
    )


class ModelConfig(StrictModel):
    """What trains."""

    lora: LoRAConfig = Field(default_factory=LoRAConfig, description="Optional LoRA.")
    freeze_vision_tower: bool = Field(
        False, description="Keep the vision encoder fixed (the MM-UPT recipe trains it: false)."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward (memory for time)."
    )


class TrainerConfig(StrictModel):
    """The Ray job: workers, DeepSpeed, checkpoints."""

    num_workers: int = Field(2, ge=1, description="Ray Train workers (data-parallel ranks).")
    use_gpu: bool = Field(
        False, description="One GPU per worker, nccl, bf16 allowed. false: CPU, gloo, fp32."
    )
    cpus_per_worker: int = Field(1, ge=1, description="CPU cores reserved per worker (torch threads).")
    deepspeed: Path = Field(
        Path("deploy/deepspeed/zero2_cpu.json"),
        description=(
            "DeepSpeed JSON (ZeRO stage, precision, offload). Batch sizes and gradient_clipping are filled "
            "from this config ('auto'). Relative paths: the working directory, then the project root."
        ),
    )
    seed: int = Field(0, description="Data order, rollout sampling and initialisation seed.")
    checkpoint_every: int = Field(
        50, ge=1, description="Save DeepSpeed state (for --resume) every this many steps."
    )
    keep_checkpoints: int = Field(2, ge=1, description="Keep the newest this many DeepSpeed checkpoints.")
    ray_address: str | None = Field(
        None, description="Ray cluster to join (e.g. 'auto'); None: start a local Ray."
    )
    launcher: Literal["ray", "local"] = Field(
        "ray",
        description=(
            "ray: Ray Train workers. local: one rank in this process, no Ray (num_workers 1): for a "
            "debugger, or a quick check on a laptop; same training, same artifact."
        ),
    )
    on_no_update: Literal["error", "warn"] = Field(
        "error",
        description=(
            "When every step was skipped (no prompt got a pseudo-label), the model never changed. error: the job "
            "fails with the skip reasons. warn: it publishes the unchanged model with trained_steps 0 in the stats "
            "(for campaigns that let the gate decide)."
        ),
    )
    fail_at_step: int | None = Field(
        None,
        ge=1,
        description="Testing hook: raise at the start of this step, to exercise --resume. Keep null.",
    )

    @model_validator(mode="after")
    def _local_is_one_rank(self) -> TrainerConfig:
        if self.launcher == "local" and self.num_workers != 1:
            raise ValueError(
                f"trainer.launcher local runs one rank in this process; set num_workers: 1 (got {self.num_workers})"
            )
        return self

    def deepspeed_path(self) -> Path:
        path = Path(self.deepspeed)
        if path.is_absolute() or path.exists():
            return path.resolve()
        return (PROJECT_ROOT / path).resolve()


class TrainConfig(StrictModel):
    """The whole training stage (see stages/train/__init__.py for the algorithm)."""

    data: DataConfig = Field(default_factory=DataConfig, description="Prompt sampling.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Sampling responses.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Majority vote or oracle.")
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig, description="The GRPO loss.")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Optimizer.")
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="Mini/micro-batching.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="LoRA, frozen parts, checkpointing.")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description="Ray + DeepSpeed job.")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        data, update, trainer = self.data, self.update, self.trainer
        if data.prompts_per_step % update.prompts_per_update:
            raise ValueError(
                f"data.prompts_per_step ({data.prompts_per_step}) must be a multiple of update.prompts_per_update "
                f"({update.prompts_per_update}): each rollout batch splits into whole update batches"
            )
        if update.prompts_per_update % trainer.num_workers:
            raise ValueError(
                f"update.prompts_per_update ({update.prompts_per_update}) must be a multiple of "
                f"trainer.num_workers ({trainer.num_workers}) so every worker trains an equal share"
            )
        vote = self.reward.vote
        for name in ("n_votes", "n_train"):
            value = getattr(vote, name)
            if value is not None and value > self.rollout.n:
                raise ValueError(
                    f"reward.vote.{name} ({value}) exceeds rollout.n ({self.rollout.n}): lower it"
                )
        if self.reward.teacher == "frozen" and self.reward.kind != "majority_vote":
            raise ValueError(
                "reward.teacher: frozen needs reward.kind: majority_vote (oracle has its labels)"
            )
        if vote.n_train is not None and vote.n_train < 2:
            raise ValueError("reward.vote.n_train must be >= 2: a GRPO group of one response has no baseline")
        if self.rollout.engine.backend == "vllm" and not trainer.use_gpu:
            raise ValueError(
                "rollout.engine.backend vllm needs trainer.use_gpu: true (vLLM runs on GPUs only)"
            )
        if self.rollout.engine.backend == "vllm" and self.algorithm.old_logprobs == "rollout":
            raise ValueError(
                "algorithm.old_logprobs: rollout needs rollout.engine.backend hf (vLLM's sampling kernels differ "
                "from the trainer's forward): use old_logprobs: recompute"
            )
        if self.rollout.engine.backend == "vllm" and self.model.lora.enabled:
            raise ValueError(
                "model.lora with rollout.engine.backend vllm is not supported (the engine is refreshed with full "
                "weights): use backend hf, or full fine-tuning"
            )
        return self

    @property
    def n_train(self) -> int:
        """Responses per prompt that are rewarded and trained (TTRL's n_train; the rest only vote)."""
        return self.reward.vote.n_train or self.rollout.n
