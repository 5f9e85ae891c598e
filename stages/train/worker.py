"""The per-worker loop: one Ray Train worker = one data-parallel rank holding a DeepSpeed engine.

Every rank runs the same ``fit()``; they meet only in collectives (gradient reduction inside
DeepSpeed, a few all-reduces of counts, one gather of the step's records to rank 0). A rank's
prompts are its strided share of the step's batch, and all n responses of a prompt are sampled,
voted and trained on that rank, so votes never cross workers. Rank 0 writes everything that is
written: metrics lines, per-step rollout parts, checkpoint markers, the final model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mmupt.answers import SymbolicBudget
from mmupt.deepspeed_env import name_deepspeed_accelerator, use_op_cache
from mmupt.engine.base import Completion
from mmupt.errors import MmuptError
from mmupt.modeling.loader import load_model_and_processor
from mmupt.rl import compute_advantages
from mmupt.timing import PhaseTimer
from schemas.artifacts import ROLLOUTS
from schemas.layout import METRICS_FILE, MODEL_DIR
from schemas.metrics import (
    ACTOR_GRAD_NORM,
    ACTOR_LR,
    ADV_ZERO_STD,
    LABEL_ACCURACY,
    RESPONSE_LENGTH,
    RESPONSE_TRUNCATED,
    RESPONSE_UNTRAINABLE,
    REWARD_MEAN,
    STEP_OPTIMIZER_STEPS,
    STEP_SKIPPED_MINIBATCHES,
    STEP_TRAINABLE_GROUPS,
    STEP_TRAINABLE_SEQUENCES,
    STEP_TRAINED,
    TOKENS_PER_S,
    VOTE_SHARE,
    VOTE_SKIPPED,
    VOTE_UNANIMOUS,
    VOTE_VALID,
    actor_metric,
    skipped_metric,
    timing_metric,
)
from schemas.records import GroupRecord, StepRecord
from schemas.train import TrainConfig
from stages.train import checkpoint
from stages.train.config import precision, zero_stage
from stages.train.data import Prompt, PromptSampler, load_prompts, shard
from stages.train.rewards import GroupReward, TeacherLabel, score_group
from stages.train.rollout import (
    END_OF_TURN,
    RolloutEngine,
    Rollouts,
    response_ids,
    rollout_seed,
    sampling_params,
    trainable_response,
    vision_token_ids,
)
from stages.train.teacher import job_prompts, read_labels, sample_labels, teacher_stats, write_labels
from stages.train.update import ACTOR_METRICS, PolicyUpdater, TrainSequence, UpdateStats

log = logging.getLogger(__name__)

STEPS_DIR = "steps"  # per-step rollout parts, consolidated into the rollouts table at the end


class InjectedFailure(RuntimeError):
    """Raised by the ``trainer.fail_at_step`` testing hook."""


@dataclass
class JobSpec:
    """Everything a worker needs, resolved on the driver (absolute paths, validated configs)."""

    config: dict[str, Any]
    deepspeed: dict[str, Any]
    samples_paths: list[str]
    model_dir: str
    out_dir: str
    start_step: int  # steps already done (0, or the checkpoint resumed from)
    total_steps: int
    counters: dict[str, Any] = field(default_factory=dict)
    queue: Any = None  # ray.util.queue.Queue for progress lines to the driver


def train_loop_per_worker(spec_dict: dict[str, Any]) -> None:
    """Ray Train entry point (a plain function, so Ray can ship it to any worker)."""
    _worker_environment()
    spec = JobSpec(**spec_dict)
    Trainer(spec).fit()


def run_local(spec: JobSpec) -> None:
    """One rank in this process, no Ray (``trainer.launcher: local``): a debugger can step through it.

    The process group is a world of one over gloo (nccl with a GPU), initialised from the usual
    environment variables, which are set here unless the caller already did (and removed again
    when the job ends).
    """
    _worker_environment()
    defaults = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "LOCAL_RANK": "0"}
    added = {k: v for k, v in {**defaults, "WORLD_SIZE": "1"}.items() if k not in os.environ}
    os.environ.update(added)
    try:
        Trainer(spec, rank=0, world_size=1).fit()
    finally:
        # The variables are this call's to remove: left set, a child process (a CLI campaign started
        # from here) inherited MASTER_PORT and failed with "address already in use". The process
        # group itself stays: DeepSpeed keeps references to it, and the next local job reuses it.
        for key in added:
            os.environ.pop(key, None)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker_environment() -> None:
    # DeepSpeed's ZeRO calls a torch.distributed alias that torch deprecates, once per step: noise in
    # every worker's log that the user can do nothing about.
    warnings.filterwarnings("ignore", message=".*all_gather_into_tensor.*", category=FutureWarning)
    name_deepspeed_accelerator()  # before deepspeed is imported: it chooses once, at import
    use_op_cache()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Trainer:
    """One rank of the job: model, DeepSpeed engine, rollout engine, and the step loop."""

    def __init__(self, spec: JobSpec, rank: int | None = None, world_size: int | None = None):
        """``rank``/``world_size`` None: read them from the Ray Train context (the Ray launcher)."""
        self.spec = spec
        self.config = config = TrainConfig.model_validate(spec.config)
        on_ray = rank is None or world_size is None
        if on_ray:
            import ray.train

            context = ray.train.get_context()
            rank, world_size = context.get_world_rank(), context.get_world_size()
        assert rank is not None and world_size is not None
        self.rank, self.world_size = rank, world_size
        self.out_dir = Path(spec.out_dir)
        self.checkpoint_dir = self.out_dir / checkpoint.CHECKPOINTS
        if not config.trainer.use_gpu:
            torch.set_num_threads(config.trainer.cpus_per_worker)
        self.device = self._device(on_ray)
        torch.manual_seed(config.trainer.seed)

        # ---- data: every rank loads the same pool and computes the same batches
        self.pool = load_prompts(spec.samples_paths)
        self.sampler = PromptSampler.for_pool(
            self.pool, config.data.prompts_per_step, config.data.synthetic_ratio, config.trainer.seed
        )

        # ---- model: policy (+ LoRA / frozen parts), frozen reference, DeepSpeed engine
        self.zero_stage = zero_stage(spec.deepspeed)
        dtype = precision(spec.deepspeed)
        model, self.processor = load_model_and_processor(spec.model_dir, "cpu", dtype)
        self.end_of_turn = self.processor.tokenizer.convert_tokens_to_ids(END_OF_TURN)
        self.vision_ids = vision_token_ids(self.processor)
        lora = config.model.lora.enabled
        # With LoRA the reference is the base model with its adapters switched off: no copy needed.
        reference = None
        if config.algorithm.uses_reference and not lora:
            reference = copy.deepcopy(model).to(self.device).eval().requires_grad_(False)
        self.engine = self._deepspeed_engine(self._trainable(model))
        if spec.start_step:
            state = checkpoint.load(self.engine, self.checkpoint_dir, spec.start_step)
            if state.get("step") != spec.start_step:
                raise MmuptError(
                    f"{self.checkpoint_dir}: checkpoint step {state.get('step')} != {spec.start_step}"
                )

        # ---- rollout engine and updater
        self.rollout = self._rollout_engine(self.engine.module, dtype)
        self.updater = PolicyUpdater(
            self.engine, reference, self.processor, config, self.world_size, use_adapter_reference=lora
        )
        self.counters: dict[str, Any] = {"trained_steps": 0, "skipped_steps": 0, "skip_reasons": {}}
        self.counters.update(spec.counters)
        if self.rank == 0:
            self._send({"kind": "ready"})  # the driver times start-up (Ray, model load, DeepSpeed) by it
        self.teacher: dict[str, TeacherLabel] | None = None
        if config.reward.kind == "majority_vote" and config.reward.teacher == "frozen":
            self.teacher = self._frozen_teacher()

    def _frozen_teacher(self) -> dict[str, TeacherLabel]:
        """The starting policy's labels for every prompt of the job (read back when resuming)."""
        import torch.distributed as dist

        if self.spec.start_step:
            return read_labels(self.out_dir)
        prompts = job_prompts(self.pool, self.sampler, self.spec.total_steps)
        mine = sample_labels(self.rollout.generate, prompts, self.config, self.rank, self.world_size)
        parts: list[Any] = [None] * self.world_size
        if dist.is_initialized() and self.world_size > 1:
            dist.all_gather_object(parts, mine)
        else:
            parts = [mine]
        merged = {pid: label for part in parts for pid, label in part.items()}
        labels = {p.id: merged[p.id] for p in prompts}
        if self.rank == 0:
            write_labels(labels, self.out_dir)
            stats = teacher_stats(labels, prompts)
            self.counters["teacher"] = stats
            self._send({"kind": "teacher", "stats": stats})
        return labels

    def _trainable(self, model: torch.nn.Module) -> torch.nn.Module:
        """Apply gradient checkpointing, LoRA and the frozen vision tower as configured."""
        settings = self.config.model
        if settings.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        if settings.lora.enabled:
            from peft import LoraConfig, get_peft_model

            lc = settings.lora
            adapters = LoraConfig(
                r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout, target_modules=lc.target_modules
            )
            model = get_peft_model(model, adapters)
        if settings.freeze_vision_tower:
            for name, param in model.named_parameters():
                if "visual" in name.split("."):
                    param.requires_grad_(False)
        return model

    def _device(self, on_ray: bool) -> torch.device:
        if not self.config.trainer.use_gpu:
            return torch.device("cpu")
        if on_ray:
            import ray.train.torch

            return ray.train.torch.get_device()
        return torch.device("cuda", self.rank % torch.cuda.device_count())

    def _deepspeed_engine(self, model: torch.nn.Module) -> Any:
        """AdamW (+ linear warm-up, then constant) on the trainable parameters, wrapped by DeepSpeed."""
        import deepspeed

        optim = self.config.optim
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay
        )
        warmup = optim.warmup_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        # DeepSpeed print()s a line per rank per op load ("... built successfully", cached or not):
        # kept at DEBUG, off the console every round.
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            deepspeed.init_distributed(dist_backend="nccl" if self.config.trainer.use_gpu else "gloo")
            engine, _, _, _ = deepspeed.initialize(
                model=model, optimizer=optimizer, lr_scheduler=schedule, config=self.spec.deepspeed
            )
        if printed.getvalue().strip():
            log.debug("deepspeed: %s", printed.getvalue().strip())
        return engine

    def _rollout_engine(self, module: torch.nn.Module, dtype: str) -> RolloutEngine:
        engine_config = self.config.rollout.engine
        if engine_config.backend == "hf":
            from mmupt.engine.hf import HFEngine

            # A peft model's base model carries the (active) adapters in place; the engine needs the HF model.
            policy = module.get_base_model() if self.config.model.lora.enabled else module
            engine = HFEngine(
                policy, self.processor, model_id=self.spec.model_dir, batch_size=engine_config.batch_size
            )
        else:
            from mmupt.engine.vllm import VLLMEngine

            rollout = self.config.rollout
            engine = VLLMEngine(
                self.spec.model_dir,
                engine_config.model_copy(update={"dtype": dtype}),
                max_model_len=rollout.max_prompt_length + rollout.max_response_length,
                seed=self.config.trainer.seed + self.rank,
                in_process=True,
            )
        rollout_engine = RolloutEngine(engine, module, self.zero_stage, engine_config.backend)
        if self.spec.start_step:
            rollout_engine.refresh()  # a resumed policy differs from model_dir
        return rollout_engine

    # ------------------------------------------------------------------ the algorithm
    def fit(self) -> None:
        config = self.config
        for step in range(self.spec.start_step + 1, self.spec.total_steps + 1):
            if config.trainer.fail_at_step == step:
                raise InjectedFailure(f"trainer.fail_at_step hook: stopping at the start of step {step}")
            timer = PhaseTimer()
            started = time.perf_counter()
            prompts = [
                self.pool.get(ref) for ref in shard(self.sampler.batch(step), self.rank, self.world_size)
            ]
            with timer("rollout"):
                sampling = sampling_params(config, rollout_seed(config.trainer.seed, step, self.rank))
                rollouts = self.rollout.generate(prompts, sampling)
            with timer("vote"):
                symbolic_budget = SymbolicBudget(config.reward.vote.max_batch_symbolic_seconds)
                groups = [
                    score_group(
                        [c.text for c in completions],
                        prompt.oracle_answer,
                        config.reward,
                        self.teacher.get(prompt.id) if self.teacher is not None else None,
                        symbolic_budget,
                    )
                    for prompt, completions in zip(rollouts.prompts, rollouts.completions, strict=True)
                ]
            with timer("adv"):
                advantages = self.advantages(groups)
                minibatches = self.minibatches(rollouts, groups, advantages)
            trainable = int(
                _all_reduce(torch.tensor([sum(len(mb) for mb in minibatches)], dtype=torch.float64)).item()
            )
            stats = UpdateStats()
            if trainable:
                with timer("update"):
                    stats = self.updater.update(minibatches, self.stand_in(rollouts))
                    self.rollout.refresh()
                timer.seconds["logprob"] = stats.logprob_seconds
                timer.seconds["update"] -= stats.logprob_seconds
                self.counters["trained_steps"] += 1
            else:
                self.counters["skipped_steps"] += 1  # nothing to learn from: no zero-gradient optimizer step
            if step % config.trainer.checkpoint_every == 0 or step == self.spec.total_steps:
                with timer("checkpoint"):
                    checkpoint.save(
                        self.engine,
                        self.checkpoint_dir,
                        step,
                        self.client_state(step),
                        config.trainer.keep_checkpoints,
                        self.rank,
                    )
            timer.seconds["step"] = time.perf_counter() - started
            self.report(step, rollouts, groups, advantages, stats, timer.seconds, trainable)
        with torch.no_grad():
            checkpoint.save_hf_model(
                self.engine.module,
                self.processor,
                self.out_dir / MODEL_DIR,
                self.zero_stage,
                self.rank,
                lora=config.model.lora.enabled,
            )
        if self.rank == 0:
            self._send({"kind": "done", "counters": self.counters})

    # ------------------------------------------------------------------ phases
    def advantages(self, groups: list[GroupReward]) -> list[list[float]]:
        """Group-relative advantages of every trainable group's rewarded responses ([] when skipped)."""
        rewards, index = [], []
        for g, group in enumerate(groups):
            if group.trainable:
                rewards += group.rewards
                index += [g] * len(group.rewards)
        out: list[list[float]] = [[] for _ in groups]
        if not rewards:
            return out
        algo = self.config.algorithm
        adv = compute_advantages(
            torch.tensor(rewards, dtype=torch.float64), torch.tensor(index), algo.advantage, algo.eps
        ).tolist()
        for value, g in zip(adv, index, strict=True):
            out[g].append(value)
        return out

    def minibatches(
        self, rollouts: Rollouts, groups: list[GroupReward], advantages: list[list[float]]
    ) -> list[list[TrainSequence]]:
        """This rank's trainable sequences, cut into its share of each update batch (by prompt)."""
        per_update = self.config.update.prompts_per_update // self.world_size
        batches: list[list[TrainSequence]] = []
        for start in range(0, len(rollouts.prompts), per_update):
            batch = []
            for i in range(start, min(start + per_update, len(rollouts.prompts))):
                if not groups[i].trainable:
                    continue
                prompt = rollouts.prompts[i]
                for completion, advantage in zip(rollouts.completions[i], advantages[i], strict=False):
                    ids = self.trainable_ids(completion)
                    if ids is not None:
                        batch.append(
                            TrainSequence(prompt.problem, prompt.images, ids, advantage, completion.logprobs)
                        )
            batches.append(batch)
        return batches

    def trainable_ids(self, completion: Completion) -> list[int] | None:
        return trainable_response(completion, self.end_of_turn, self.vision_ids)

    def stand_in(self, rollouts: Rollouts) -> TrainSequence:
        """A real sequence for zero-weighted passes (see update.py): this rank's first response."""
        prompt: Prompt = rollouts.prompts[0]
        ids = self.trainable_ids(rollouts.completions[0][0]) or [self.end_of_turn]
        return TrainSequence(prompt.problem, prompt.images, ids, 0.0)

    def client_state(self, step: int) -> dict[str, Any]:
        return {
            "step": step,
            "sampler": {**self.sampler.position(step), "fingerprint": self.sampler.fingerprint()},
            "seeds": {"seed": self.config.trainer.seed, "rollout": "sha256(seed, step, rank)"},
            "num_workers": self.world_size,
            "counters": self.counters,
        }

    # ------------------------------------------------------------------ reporting
    def report(
        self,
        step: int,
        rollouts: Rollouts,
        groups: list[GroupReward],
        advantages: list[list[float]],
        stats: UpdateStats,
        seconds: dict[str, float],
        trainable: int,
    ) -> None:
        """Gather this step's records on rank 0; it writes the metrics line and the rollout part."""
        import torch.distributed as dist

        payload = StepRecord(
            rows=self._rollout_rows(step, rollouts, groups, advantages),
            groups=[
                GroupRecord(
                    vote_share=g.vote_share,
                    skip_reason=g.skip_reason,
                    unanimous=g.unanimous,
                    label_correct=g.label_correct,
                    rewards=g.rewards,
                    n_valid=g.n_valid,
                    n_responses=len(g.answers),
                    zero_std=g.trainable and len(set(g.rewards)) <= 1,
                )
                for g in groups
            ],
            actor=stats.sums,
            actor_tokens=stats.tokens,
            grad_norms=stats.grad_norms,
            optimizer_steps=stats.optimizer_steps,
            skipped_minibatches=stats.skipped_minibatches,
            seconds=seconds,
            response_tokens=rollouts.response_tokens,
            truncated=sum(c.finish_reason == "length" for group in rollouts.completions for c in group),
            untrainable=sum(
                self.trainable_ids(c) is None
                for group, g in zip(rollouts.completions, groups, strict=True)
                if g.trainable
                for c in group[: len(g.rewards)]
            ),
        )
        gathered: list[StepRecord] = [None] * self.world_size if self.rank == 0 else []  # type: ignore[list-item]
        if dist.is_initialized() and self.world_size > 1:
            dist.gather_object(payload, gathered if self.rank == 0 else None, dst=0)
        else:
            gathered = [payload]
        if self.rank != 0:
            return
        metrics = step_metrics(gathered, trainable)
        metrics[ACTOR_LR] = float(self.engine.get_lr()[0])
        for reason, count in Counter(
            g.skip_reason for part in gathered for g in part.groups if g.skip_reason
        ).items():
            self.counters["skip_reasons"][reason] = self.counters["skip_reasons"].get(reason, 0) + count
        rows = [row for part in gathered for row in part.rows]
        parts = self.out_dir / STEPS_DIR
        parts.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=ROLLOUTS), parts / f"rollouts-{step:06d}.parquet")
        with (self.out_dir / METRICS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}, sort_keys=True) + "\n")
        self._send({"kind": "step", "step": step, "metrics": metrics})

    def _rollout_rows(
        self, step: int, rollouts: Rollouts, groups: list[GroupReward], advantages: list[list[float]]
    ) -> list[dict[str, Any]]:
        rows = []
        for prompt, completions, group, adv in zip(
            rollouts.prompts, rollouts.completions, groups, advantages, strict=True
        ):
            for i, completion in enumerate(completions):
                rows.append(
                    {
                        "step": step,
                        "prompt_id": prompt.id,
                        "problem": prompt.problem,
                        "response_index": i,
                        "response": completion.text,
                        "answer": group.answers[i] if i < len(group.answers) else None,
                        "pseudo_label": group.pseudo_label,
                        "vote_share": group.vote_share,
                        "reward": group.rewards[i] if i < len(group.rewards) else 0.0,
                        "advantage": adv[i] if i < len(adv) else 0.0,
                        "oracle_answer": prompt.oracle_answer,
                        "response_tokens": len(response_ids(completion, self.end_of_turn)),
                    }
                )
        return rows

    def _send(self, message: dict[str, Any]) -> None:
        if self.spec.queue is not None:
            self.spec.queue.put(message)


def _all_reduce(values: torch.Tensor) -> torch.Tensor:
    return PolicyUpdater._all_reduce(values)


def step_metrics(parts: list[StepRecord], trainable_sequences: int) -> dict[str, float]:
    """The step's metrics from every rank's records (keys documented in stages/train/__init__.py)."""
    groups = [g for part in parts for g in part.groups]
    n_groups = len(groups)
    labelled = [g for g in groups if g.skip_reason is None]
    rewards = [r for g in labelled for r in g.rewards]
    responses = sum(g.n_responses for g in groups)
    out: dict[str, float] = {
        REWARD_MEAN: sum(rewards) / len(rewards) if rewards else 0.0,
        VOTE_SHARE: sum(g.vote_share for g in groups) / n_groups,
        VOTE_SKIPPED: 1 - len(labelled) / n_groups,
        VOTE_UNANIMOUS: sum(g.unanimous for g in groups) / n_groups,
        VOTE_VALID: sum(g.n_valid for g in groups) / responses if responses else 0.0,
        ADV_ZERO_STD: sum(g.zero_std for g in labelled) / len(labelled) if labelled else 0.0,
        STEP_TRAINABLE_GROUPS: float(len(labelled)),
        STEP_TRAINABLE_SEQUENCES: float(trainable_sequences),
        STEP_TRAINED: 1.0 if trainable_sequences else 0.0,
        STEP_OPTIMIZER_STEPS: float(parts[0].optimizer_steps),
        STEP_SKIPPED_MINIBATCHES: float(parts[0].skipped_minibatches),
    }
    for reason, count in Counter(g.skip_reason for g in groups if g.skip_reason).items():
        out[skipped_metric(reason)] = float(count)
    judged = [g.label_correct for g in labelled if g.label_correct is not None]
    if judged:
        out[LABEL_ACCURACY] = sum(judged) / len(judged)
    tokens = sum(part.actor_tokens for part in parts)
    if tokens:
        for key in ACTOR_METRICS:
            if any(key in part.actor for part in parts):
                out[actor_metric(key)] = sum(part.actor.get(key, 0.0) for part in parts) / tokens
        norms = parts[0].grad_norms
        if norms:
            out[ACTOR_GRAD_NORM] = sum(norms) / len(norms)
    generated = sum(part.response_tokens for part in parts)
    out[RESPONSE_LENGTH] = generated / responses if responses else 0.0
    out[RESPONSE_TRUNCATED] = sum(part.truncated for part in parts) / responses if responses else 0.0
    out[RESPONSE_UNTRAINABLE] = float(sum(part.untrainable for part in parts))
    phases = {phase for part in parts for phase in part.seconds}
    for phase in sorted(phases):
        out[timing_metric(phase)] = max(part.seconds.get(phase, 0.0) for part in parts)
    rollout_s = out.get(timing_metric("rollout"), 0.0)
    out[TOKENS_PER_S] = generated / rollout_s if rollout_s else 0.0
    return out
