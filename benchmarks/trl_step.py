"""One GRPO rollout batch: mmupt's training job vs TRL's ``GRPOTrainer``, side by side in one run.

    make bench      # the whole harness (benchmarks/perf.sh); it installs TRL into .bench/packages
    PYTHONPATH=.bench/packages .venv/bin/python benchmarks/trl_step.py \
        --model runs/demo/round-0/sft/model --samples runs/demo/round-0/ingest --steps 5

Both sides train the same tiny Qwen2.5-VL (the demo's SFT model) on the same unlabeled prompts with
the same recipe (configs/train_tiny.yaml): 16 prompts x n 8 per rollout batch, two optimizer steps
per batch, responses up to 64 tokens at T 0.6, lr 1e-4, KL k3 at 0.01 to the frozen start, clip
0.2, token-level loss, one PPO epoch, majority-vote self-reward (the same extraction and vote code:
the scoring is not what is compared). Two CPU processes, one thread each:
- mmupt: ``mmupt train``, Ray Train with 2 workers, DeepSpeed ZeRO-2 (the shipped launcher);
- TRL: ``torchrun --nproc_per_node 2`` (DDP over gloo), transformers ``generate`` for rollouts.

The phase split is measured the same way on both sides: wall seconds of generating, scoring
(extract + vote), the no-grad log-prob passes (old and reference) and the rest of the step (the
update: forward with grad, backward, optimizer), per rollout batch, rank 0. Each side runs
``--repeats`` times, interleaved in a rotating order (this machine's speed drifts within minutes);
the table is the median over batches 2.. of all runs (the first of each run warms up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_job import TRAIN_CONFIG, read_step_metrics, train_command  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("rollout", "vote", "logprob", "update")
TRL = "TRL GRPOTrainer"
MEASURED = ("rollout", "vote", "logprob", "step")


# ---------------------------------------------------------------- mmupt side


def mmupt_job(model: Path, samples: Path, steps: int, out: Path, sets: dict[str, str]) -> list[dict]:
    """Run ``mmupt train`` as a user would and return its per-step metrics."""
    sets = {"data.max_steps": str(steps), "trainer.checkpoint_every": "1000", **sets}
    command = train_command(samples, model, out, sets)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=child_env())
    return read_step_metrics(out)


def mmupt_batches(metrics: list[dict]) -> list[dict[str, float]]:
    """Seconds per phase of each step after the first (the first warms up)."""
    warm = metrics[1:] or metrics
    return [{key: m[f"timing_s/{key}"] for key in MEASURED} for m in warm]


# ---------------------------------------------------------------- TRL side (one torchrun rank)


class PhaseClock:
    """Seconds per phase, accumulated by wrapping the trainer's methods (TRL has no phase split)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: type, name: str, phase_of: Any) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phase = phase_of()
                if phase is not None:
                    self.seconds[phase] += time.perf_counter() - start

        setattr(owner, name, timed)


def trl_rank(model_dir: Path, samples: Path, steps: int, result_file: Path) -> None:
    """One torchrun rank of TRL's GRPOTrainer on the mmupt recipe; rank 0 writes its batch timings."""
    import pyarrow.parquet as pq
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from mmupt.answers import extract_answer
    from mmupt.modeling.inputs import decode_image
    from mmupt.modeling.loader import load_model, load_processor
    from mmupt.prompts import reasoning_messages
    from schemas.base import load_config
    from schemas.train import TrainConfig
    from stages.vote import vote_group

    torch.set_num_threads(1)
    recipe = load_config(TrainConfig, TRAIN_CONFIG)
    rows = pq.read_table(samples / "samples.parquet").to_pylist()
    dataset = Dataset.from_list(
        [
            {
                "id": row["id"],
                "prompt": reasoning_messages(row["problem"], len(row["images"])),
                "image": decode_image(row["images"][0]),
            }
            for row in rows
        ]
    )

    def majority_vote(completions: list, id: list[str], **_: Any) -> list[float]:  # noqa: A002 - TRL passes columns by name
        """The same extraction and vote as mmupt's trainer, per prompt group on this rank."""
        groups: dict[str, list[int]] = defaultdict(list)
        for index, prompt_id in enumerate(id):
            groups[prompt_id].append(index)
        rewards = [0.0] * len(completions)
        for members in groups.values():
            answers = [extract_answer(completions[i][-1]["content"]) for i in members]
            for i, reward in zip(members, vote_group(answers, recipe.reward.vote).rewards, strict=True):
                rewards[i] = reward
        return rewards

    n = recipe.rollout.n
    per_batch = recipe.data.prompts_per_step * n  # completions per rollout batch, all ranks
    updates = recipe.data.prompts_per_step // recipe.update.prompts_per_update
    world = int(os.environ.get("WORLD_SIZE", "1"))
    args = GRPOConfig(
        output_dir=str(result_file.parent / "trl-out"),
        per_device_train_batch_size=per_batch // (world * updates),
        steps_per_generation=updates,
        num_generations=n,
        max_completion_length=recipe.rollout.max_response_length,
        temperature=recipe.rollout.temperature,
        top_p=recipe.rollout.top_p,
        learning_rate=recipe.optim.lr,
        weight_decay=recipe.optim.weight_decay,
        max_grad_norm=recipe.optim.grad_clip,
        lr_scheduler_type="constant",
        beta=recipe.algorithm.kl_coef,
        epsilon=recipe.algorithm.clip_low,
        num_iterations=recipe.algorithm.ppo_epochs,
        loss_type="dapo",  # token-level mean, as mmupt's token_mean
        scale_rewards="group",
        max_steps=steps * updates,
        use_cpu=True,
        bf16=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=recipe.trainer.seed,
        dataloader_num_workers=0,
        log_completions=False,
        gradient_checkpointing=recipe.model.gradient_checkpointing,  # TRL's default is on; the recipe's off
        ddp_find_unused_parameters=False,
    )
    clock = PhaseClock()
    clock.wrap(GRPOTrainer, "_generate", lambda: "rollout")
    clock.wrap(GRPOTrainer, "_calculate_rewards", lambda: "vote")
    clock.wrap(
        GRPOTrainer,
        "_get_per_token_logps_and_entropies",
        lambda: None if torch.is_grad_enabled() else "logprob",
    )

    marks: list[tuple[float, dict[str, float]]] = []

    class BatchMarks(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            marks.append((time.perf_counter(), dict(clock.seconds)))

        def on_step_end(self, _args: Any, state: Any, *__: Any, **___: Any) -> None:
            if state.global_step % updates == 0:  # a rollout batch's last optimizer step
                marks.append((time.perf_counter(), dict(clock.seconds)))

    trainer = GRPOTrainer(
        model=load_model(model_dir),
        reward_funcs=majority_vote,
        args=args,
        train_dataset=dataset,
        processing_class=load_processor(model_dir),
        callbacks=[BatchMarks()],
    )
    trainer.train()
    if trainer.accelerator.is_main_process:
        batches = []
        for (t0, before), (t1, after) in zip(marks, marks[1:], strict=False):
            phases = {p: after.get(p, 0.0) - before.get(p, 0.0) for p in ("rollout", "vote", "logprob")}
            batches.append({**phases, "step": t1 - t0})
        result_file.write_text(json.dumps(batches))


def trl_job(model: Path, samples: Path, steps: int, out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    result = out / "batches.json"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command = [*torchrun, __file__, "--trl-rank", "--model", str(model), "--samples", str(samples)]
    command += ["--steps", str(steps), "--result", str(result)]
    subprocess.run(command, check=True, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def trl_batches(batches: list[dict]) -> list[dict[str, float]]:
    return batches[1:] or batches


def phases(batches: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds per measured phase; ``update`` is the rest of the step (advantages included)."""
    out = {key: statistics.median(b[key] for b in batches) for key in MEASURED}
    out["update"] = out["step"] - out["rollout"] - out["vote"] - out["logprob"]
    return out


# ---------------------------------------------------------------- the comparison


def child_env() -> dict[str, str]:
    """One thread per process on both sides, offline, the benchmark-only packages importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "mmupt" / "torch_extensions"))
    return env


def table(sides: dict[str, dict[str, float]]) -> str:
    """One row per phase: each side's seconds, then TRL's time over each mmupt variant's."""
    reference = sides[TRL]
    ours = [name for name in sides if name != TRL]
    lines = [
        "| phase (s per rollout batch) | "
        + " | ".join(sides)
        + " | "
        + " | ".join(f"TRL / {name}" for name in ours)
        + " |",
        "|---|" + "---:|" * (len(sides) + len(ours)),
    ]
    for phase in (*PHASES, "step"):
        cells = [f"{sides[name][phase]:.2f}" for name in sides]
        ratios = [
            f"{reference[phase] / sides[name][phase]:.2f}x" if sides[name][phase] >= 0.05 else "-"
            for name in ours
        ]
        label = "**whole step**" if phase == "step" else phase
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=5, help="rollout batches per side (the first warms up)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per side, interleaved (this machine's speed drifts)"
    )
    parser.add_argument("--trl-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trl_rank:
        trl_rank(args.model.resolve(), args.samples.resolve(), args.steps, args.result)
        return
    model, samples = args.model.resolve(), args.samples.resolve()
    started = time.strftime("%Y-%m-%d %H:%M")
    jobs = {
        "mmupt (recompute)": lambda out: mmupt_batches(mmupt_job(model, samples, args.steps, out, {})),
        "mmupt (rollout log-probs)": lambda out: mmupt_batches(
            mmupt_job(model, samples, args.steps, out, {"algorithm.old_logprobs": "rollout"})
        ),
        TRL: lambda out: trl_batches(trl_job(model, samples, args.steps, out)),
    }
    pooled: dict[str, list[dict[str, float]]] = {name: [] for name in jobs}
    step_by_repeat: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            names = list(jobs)[repeat % len(jobs) :] + list(jobs)[: repeat % len(jobs)]  # rotate the order
            steps = {}
            for name in names:
                batches = jobs[name](Path(tmp) / f"{repeat}-{len(steps)}")
                pooled[name] += batches
                steps[name] = phases(batches)["step"]
            step_by_repeat.append(steps)
    sides = {name: phases(batches) for name, batches in pooled.items()}
    import trl

    print(
        f"{started}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TRL {trl.__version__}"
    )
    print(table(sides))
    for name in (n for n in jobs if n != TRL):
        ratios = ", ".join(f"{r[TRL] / r[name]:.2f}x" for r in step_by_repeat)
        print(f"\nwhole step, TRL / {name}, repeat by repeat: {ratios}")


if __name__ == "__main__":
    main()
