"""MM-UPT training: real Ray Train + DeepSpeed ZeRO-2 on CPU with a tiny Qwen2.5-VL, plus its failure modes.

The end-to-end tests share one uninterrupted 2-worker run (3 steps) as their reference: it must
change the weights and write every output, and a run killed at step 3 and resumed must end with
bit-identical weights and rollouts. Kill/resume uses 2 workers like the reference (each Ray launch
costs ~30 s here, so the file runs 4 launches in total).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import torch
import yaml
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from mmupt.errors import ConfigError, InputDataError, ModelLoadError
from mmupt.store import read_manifest, read_table, write_artifact
from schemas.artifacts import ROLLOUTS, SAMPLES
from schemas.base import validate_config
from schemas.train import RewardConfig, TrainConfig
from stages.train import TrainJobError, run_train
from stages.train.checkpoint import saved_steps
from stages.train.config import resolve_deepspeed
from stages.train.data import PromptSampler, load_prompts, shard
from stages.train.job import finished_run, interrupted_run
from stages.train.rewards import TeacherLabel, score_group

QUESTION = "How many circles are there?"
TEXTS = [
    QUESTION,
    "Think step by step, then give the final answer in \\boxed{}.",
    "\\boxed{3}",
    "\\boxed{4}",
] * 30
N_PROMPTS = 8


def _png(n_circles: int, color: str = "red") -> bytes:
    image = Image.new("RGB", (56, 56), "white")
    draw = ImageDraw.Draw(image)
    for i in range(n_circles):
        draw.ellipse((4 + 12 * i, 20, 14 + 12 * i, 30), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _samples_artifact(out: Path, n: int, oracle: str = "3") -> Path:
    rows = {
        "id": [f"q{i}" for i in range(n)],
        "images": [[_png(3)] for _ in range(n)],
        "image_widths": [[56] for _ in range(n)],
        "image_heights": [[56] for _ in range(n)],
        "problem": [f"<image>{QUESTION}"] * n,
        "oracle_answer": [oracle] * n,
        "source": ["test"] * n,
        "metadata": [None] * n,
    }
    write_artifact(out, "ingest", {"samples": pa.Table.from_pydict(rows, schema=SAMPLES)})
    return out


def _config(**overrides) -> TrainConfig:
    """3 steps of 4 prompts x 4 responses, 2 optimizer steps per rollout batch, ppo_epochs 2."""
    tree = {
        "data": {"prompts_per_step": 4, "epochs": 2.0, "max_steps": 3},
        "rollout": {"n": 4, "temperature": 1.0, "top_p": 1.0, "max_response_length": 8},
        "algorithm": {"ppo_epochs": 2, "kl": "low_var_kl", "kl_coef": 0.01},
        "optim": {"lr": 1e-3},
        "update": {"prompts_per_update": 2, "micro_batch_size": 3},
        "trainer": {"num_workers": 2, "checkpoint_every": 2},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        tree.setdefault(section, {})[key] = value
    return validate_config(TrainConfig, tree)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from mmupt.ray_local import start_ray
    from stages.train.job import worker_env

    if not ray.is_initialized():
        start_ray(None, 2, worker_env(_config()))
    yield
    ray.shutdown()


@pytest.fixture
def local_rank(monkeypatch):
    """A clean rendezvous for ``trainer.launcher: local`` (one rank in this process)."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> Path:
    """A freshly initialised tiny model: it writes no parsable answer."""
    from mmupt.modeling.factory import create_tiny_model
    from schemas.model import TinyModelConfig

    config = TinyModelConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        vision_hidden_size=32,
        vision_depth=1,
        vision_num_heads=2,
        min_pixels=56 * 56,
        max_pixels=56 * 56,
    )
    return create_tiny_model(config, TEXTS, tmp_path_factory.mktemp("random-model"))


@pytest.fixture(scope="module")
def warm_model(random_model, tmp_path_factory) -> Path:
    """The tiny model taught (seconds of teacher forcing) to answer \\boxed{3} mostly and \\boxed{4}
    sometimes, so votes have a majority but not unanimity: GRPO gets a real signal."""
    from mmupt.modeling.inputs import prompt_text, training_batch
    from mmupt.modeling.loader import load_model_and_processor

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is ~20x faster than two on a busy 2-core machine
    model, processor = load_model_and_processor(random_model)
    tokenizer = processor.tokenizer
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt, image = prompt_text(processor, QUESTION, 1), _png(3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = random.Random(0)
    model.train()
    for _ in range(80):
        answers = [rng.choice("3334") for _ in range(16)]
        targets = [
            tokenizer(f"\\boxed{{{a}}}", add_special_tokens=False)["input_ids"] + [end_of_turn]
            for a in answers
        ]
        batch = training_batch(processor, [prompt] * 16, [[image]] * 16, targets)
        batch.pop("response_mask")
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("warm-model")
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    return _samples_artifact(tmp_path_factory.mktemp("samples") / "samples", N_PROMPTS)


@pytest.fixture(scope="module")
def uninterrupted(ray_cluster, warm_model, samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    seen: list[tuple[int, dict]] = []
    result = run_train(
        [samples], warm_model, out, _config(), on_metrics=lambda step, m: seen.append((step, m))
    )
    return result, seen


# ---------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_two_worker_zero2_job_trains_and_writes_outputs(uninterrupted, warm_model, samples):
    result, seen = uninterrupted
    out = result.out_dir
    assert result.total_steps == 3 and result.trained_steps >= 2 and result.resumed_from == 0

    before = load_file(warm_model / "model.safetensors")
    after = load_file(out / "model" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, "most tensors must move after 3 GRPO steps at lr 1e-3"

    manifest = read_manifest(out)
    assert manifest.kind == "train" and manifest.stats["trained_steps"] == result.trained_steps
    # where the job's time went, as the driver saw it (no frozen teacher here)
    phases = manifest.stats["phase_seconds"]
    assert set(phases) == {"timing_s/startup", "timing_s/steps", "timing_s/finish"}
    assert all(v >= 0 for v in phases.values()) and sum(phases.values()) <= result.seconds
    rollouts = read_table(out, "rollouts")
    assert rollouts.schema.equals(ROLLOUTS)
    assert rollouts.num_rows == 3 * 4 * 4  # steps x prompts x responses
    rows = rollouts.to_pylist()
    sampler = PromptSampler.for_pool(load_prompts([samples]), 4, None, 0)
    pool_ids = [f"q{i}" for i in range(N_PROMPTS)]
    for step in (1, 2, 3):
        in_step = [r for r in rows if r["step"] == step]
        expected = {pool_ids[i] for _, i in sampler.batch(step)}
        assert {r["prompt_id"] for r in in_step} == expected  # the sampler's order, all workers together
        for pid in expected:
            assert sorted(r["response_index"] for r in in_step if r["prompt_id"] == pid) == [0, 1, 2, 3]
    labelled = [r for r in rows if r["pseudo_label"] is not None]
    assert labelled and all(r["reward"] in (0.0, 1.0) for r in rows)
    assert all(r["reward"] == (1.0 if r["answer"] == r["pseudo_label"] else 0.0) for r in labelled)
    assert all(r["oracle_answer"] == "3" and r["response_tokens"] >= 1 for r in rows)

    # metrics: to the callback and to metrics.jsonl, every documented key present
    assert [step for step, _ in seen] == [1, 2, 3]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    trained = next(m for _, m in seen if m["step/trained"] == 1.0)
    for key in (
        "reward/mean",
        "vote/share_mean",
        "vote/skipped_share",
        "vote/unanimous_share",
        "label/accuracy",
        "actor/kl",
        "actor/entropy",
        "actor/clip_frac",
        "actor/grad_norm",
        "response/length_mean",
        "perf/tokens_per_s",
        "timing_s/rollout",
        "timing_s/vote",
        "timing_s/adv",
        "timing_s/update",
    ):
        assert key in trained, key
    assert trained["step/optimizer_steps"] == 2 * 2  # (4 / 2 prompts per update) x ppo_epochs 2
    assert 0.0 < trained["vote/share_mean"] <= 1.0 and trained["actor/entropy"] > 0
    assert lines[-1] == {"step": 3, **seen[-1][1]}

    # a private cluster runs no placement-group cleaner (mmupt.ray_local.private_cluster_callbacks)
    import ray

    actor_classes = {actor["ActorClassName"] for actor in ray._private.state.actors().values()}
    assert "TrainController" in actor_classes and "PlacementGroupCleaner" not in actor_classes

    # checkpoints for resume and an HF model that loads like any other
    assert saved_steps(out / "checkpoints") == [2, 3]
    from mmupt.modeling.loader import load_model_and_processor

    model, _ = load_model_and_processor(out / "model")
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.slow
def test_killed_job_resumes_to_identical_weights(uninterrupted, warm_model, samples, tmp_path):
    reference, _ = uninterrupted
    out = tmp_path / "killed"
    with pytest.raises(TrainJobError, match=r"step 3.*--resume"):
        run_train([samples], warm_model, out, _config(**{"trainer.fail_at_step": 3}))
    assert not (out / "manifest.json").exists()  # an unfinished job is no artifact
    assert saved_steps(out / "checkpoints") == [2]
    # what a re-run campaign's train task sees: a crash to resume, not a finished run to reuse
    assert interrupted_run(out) and finished_run([samples], warm_model, out, _config()) is None

    with pytest.raises(ConfigError, match="--resume"):
        run_train([samples], warm_model, out, _config())  # refuses to overwrite a run
    with pytest.raises(ConfigError, match="data order"):
        run_train([samples], warm_model, out, _config(**{"trainer.seed": 1}), resume=True)

    resumed = run_train([samples], warm_model, out, _config(), resume=True)
    assert resumed.resumed_from == 2 and [m["step"] for m in resumed.metrics] == [3]
    a = load_file(reference.out_dir / "model" / "model.safetensors")
    b = load_file(out / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), (
        "resumed run must end with the uninterrupted run's weights"
    )
    ra, rb = read_table(reference.out_dir, "rollouts"), read_table(out, "rollouts")
    assert ra.equals(rb)  # same data order and the same sampled responses at every step
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not interrupted_run(out)
    assert finished_run([samples], warm_model, out, _config()) is not None  # reused, never re-trained
    assert finished_run([samples], warm_model, out, _config(**{"trainer.seed": 1})) is None


def _same_training(a: Path, b: Path) -> None:
    """Bit-identical weights, and rollouts equal in every column but the hidden label itself."""
    wa, wb = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = read_table(a, "rollouts"), read_table(b, "rollouts")
    assert ra.drop_columns(["oracle_answer"]).equals(rb.drop_columns(["oracle_answer"]))


@pytest.mark.slow
def test_the_train_command_runs_into_a_new_folder(local_rank, warm_model, samples, tmp_path, monkeypatch):
    """`mmupt train --out NEW`, as the README shows it: its MLflow store goes beside the job, never
    into the folder the job publishes over (which a fresh run refuses when it holds anything)."""
    import mlflow

    from flows.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "train.yaml"
    local = {"trainer.launcher": "local", "trainer.num_workers": 1, "data.max_steps": 1}
    config.write_text(yaml.safe_dump(_config(**local).model_dump(mode="json")), encoding="utf-8")
    out = tmp_path / "runs" / "train"
    args = ["train", "--samples", str(samples), "--model", str(warm_model), "--config", str(config)]
    monkeypatch.setattr(sys, "argv", ["mmupt", *args, "--out", str(out)])
    main()
    assert read_manifest(out).kind == "train" and not (out / "mlflow.db").exists()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["mmupt-train"])
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"


@pytest.mark.slow
def test_self_reward_never_reads_the_hidden_labels(local_rank, warm_model, samples, tmp_path):
    """Label-free by construction: wrong oracle answers change the diagnostics, never the training.

    One local rank per run: what is tested is the reward's independence from the hidden labels (the
    Ray and local launchers train identically: see the frozen-teacher test below)."""
    local = {"trainer.launcher": "local", "trainer.num_workers": 1}
    right = run_train([samples], warm_model, tmp_path / "online-right", _config(**local))  # oracle "3"
    wrong = _samples_artifact(tmp_path / "wrong", N_PROMPTS, oracle="7")
    result = run_train([wrong], warm_model, tmp_path / "online-wrong", _config(**local))
    _same_training(right.out_dir, result.out_dir)
    right_acc = [m.get("label/accuracy") for m in right.metrics]
    wrong_acc = [m.get("label/accuracy") for m in result.metrics]
    assert right_acc != wrong_acc and all(a in (None, 0.0) for a in wrong_acc)


@pytest.mark.slow
def test_frozen_teacher_labels_once_and_never_reads_the_hidden_labels(
    ray_cluster, local_rank, warm_model, samples, tmp_path
):
    # one worker, two steps: what is tested is the label table and its independence from the oracle
    frozen = {
        "reward.teacher": "frozen",
        "reward.teacher_n": 6,
        "data.max_steps": 2,
        "trainer.num_workers": 1,
        "update.prompts_per_update": 2,
    }
    right = run_train([samples], warm_model, tmp_path / "right", _config(**frozen))
    # wrong hidden labels, and the same job as one rank in this process without Ray
    # (trainer.launcher: local): the same labels, rollouts and weights
    wrong_samples = _samples_artifact(tmp_path / "wrong", N_PROMPTS, oracle="7")
    wrong = run_train(
        [wrong_samples],
        warm_model,
        tmp_path / "wrong-run",
        _config(**frozen, **{"trainer.launcher": "local"}),
    )
    _same_training(right.out_dir, wrong.out_dir)

    labels = read_table(right.out_dir, "rollouts").to_pylist()
    teacher = {r["prompt_id"]: r for r in pq_rows(right.out_dir / "teacher_labels.parquet")}
    assert set(teacher) == {r["prompt_id"] for r in labels}  # exactly the prompts the job trains on
    for row in labels:  # every step's label is the teacher's, fixed for the whole job
        assert row["pseudo_label"] == teacher[row["prompt_id"]]["pseudo_label"]
        if row["pseudo_label"] is not None:
            assert row["reward"] == (1.0 if row["answer"] == row["pseudo_label"] else 0.0)
    stats = read_manifest(right.out_dir).stats
    assert stats["teacher"] == "frozen" and stats["teacher_stats"]["teacher/prompts"] == len(teacher)
    assert stats["phase_seconds"]["timing_s/teacher"] > 0  # the labelling is timed as its own phase
    assert (
        read_manifest(wrong.out_dir).stats["teacher_stats"]["teacher/labelled_share"]
        == (stats["teacher_stats"]["teacher/labelled_share"])
    )


def pq_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.slow
def test_all_unparsable_steps_are_counted_and_fail_clearly(local_rank, random_model, samples, tmp_path):
    """An untrained model writes (almost) no parsable answer: every group is skipped, every step says
    so, no optimizer step is taken, and the job ends with an error that gives the reasons.

    One local rank (``trainer.launcher: local``): the counting and the driver's error are the same
    code as on Ray, without a worker group's start-up."""
    out = tmp_path / "unparsable"
    config = _config(
        **{
            "trainer.num_workers": 1,
            "trainer.launcher": "local",
            "data.max_steps": 2,
            "rollout.max_response_length": 3,
            "update.prompts_per_update": 4,
            "reward.vote": {"min_vote_ratio": 1.0},
        }
    )
    with pytest.raises(
        TrainJobError, match=r"no step had a trainable group \(2 steps; .*no_valid_answer"
    ) as err:
        run_train([samples], random_model, out, config)
    counts = dict(re.findall(r"(\w+) (\d+)", str(err.value).split("by reason: ")[1].split(")")[0]))
    assert sum(int(v) for v in counts.values()) == 8 and int(counts["no_valid_answer"]) >= 6
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step/trained"] for line in lines] == [0.0, 0.0]
    assert all(
        line["vote/skipped_share"] == 1.0 and line["vote/skipped/no_valid_answer"] >= 3 for line in lines
    )
    assert all("actor/loss" not in line and line["step/optimizer_steps"] == 0 for line in lines)
    assert not (out / "manifest.json").exists()


@pytest.mark.slow
def test_no_update_can_publish_the_unchanged_model_when_asked(local_rank, random_model, samples, tmp_path):
    """trainer.on_no_update: warn (for campaigns whose gate decides) publishes with trained_steps 0."""
    out = tmp_path / "warn"
    config = _config(
        **{
            "trainer.num_workers": 1,
            "trainer.launcher": "local",
            "trainer.on_no_update": "warn",
            "data.max_steps": 1,
            "rollout.max_response_length": 2,
            "update.prompts_per_update": 4,
            "reward.vote": {"min_vote_ratio": 1.0},
        }
    )
    result = run_train([samples], random_model, out, config)
    assert result.trained_steps == 0 and result.skipped_steps == 1
    # the local rank's rendezvous variables are removed again: a child process would inherit them
    assert "MASTER_PORT" not in os.environ
    assert read_manifest(out).stats["trained_steps"] == 0 and read_table(out, "rollouts").num_rows == 16
    before, after = (
        load_file(random_model / "model.safetensors"),
        load_file(out / "model" / "model.safetensors"),
    )
    assert all(torch.equal(before[k], after[k]) for k in before)  # no optimizer step, not even weight decay


# ---------------------------------------------------------------------------- bad input, before launching


@pytest.fixture
def no_launch(monkeypatch):
    """Fail the test if a worker would be launched: these errors must come first."""
    import stages.train.job as job

    def launch(*args, **kwargs):
        raise AssertionError("the job was launched although its input is invalid")

    monkeypatch.setattr(job, "_launch", launch)


def test_empty_samples_rejected(no_launch, random_model, tmp_path):
    empty = _samples_artifact(tmp_path / "empty", 0)
    with pytest.raises(InputDataError, match="no prompts"):
        run_train([empty], random_model, tmp_path / "out", _config())


def test_too_few_samples_for_a_step_rejected(no_launch, random_model, tmp_path):
    few = _samples_artifact(tmp_path / "few", 3)
    with pytest.raises(InputDataError, match="3 prompts but a step needs 4"):
        run_train([few], random_model, tmp_path / "out", _config())


def test_missing_model_dir_rejected(no_launch, samples, tmp_path):
    with pytest.raises(ModelLoadError, match="model directory not found"):
        run_train([samples], tmp_path / "no-such-model", tmp_path / "out", _config())


def _ds_file(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize(
    ("deepspeed", "use_gpu", "message"),
    [
        ({"bf16": {"enabled": True}, "zero_optimization": {"stage": 2}}, False, "bf16 training needs a GPU"),
        ({"fp16": {"enabled": True}}, True, "fp16 is not supported"),
        (
            {"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}},
            False,
            "remove the offload",
        ),
        ({"zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}}, True, "needs ZeRO stage 3"),
        ({"zero_optimization": {"stage": 3, "offload_param": {"device": "nvme"}}}, True, "needs nvme_path"),
        ({"zero_optimization": {"stage": 4}}, False, "must be 0, 1, 2 or 3"),
        ({"optimizer": {"type": "AdamW"}}, False, "remove it"),
        ({"train_micro_batch_size_per_gpu": 7}, False, 'set it to "auto"'),
    ],
)
def test_incompatible_deepspeed_config_rejected(
    no_launch, samples, random_model, tmp_path, deepspeed, use_gpu, message
):
    config = _config(**{"trainer.deepspeed": _ds_file(tmp_path, deepspeed), "trainer.use_gpu": use_gpu})
    with pytest.raises(ConfigError, match=message):
        run_train([samples], random_model, tmp_path / "out", config)


def test_gpu_job_without_gpus_rejected_before_workers_start(ray_cluster, samples, random_model, tmp_path):
    config = _config(**{"trainer.use_gpu": True})  # the CPU DeepSpeed file is valid on GPU too
    with pytest.raises(ConfigError, match="GPUs"):
        run_train([samples], random_model, tmp_path / "out", config)


def test_config_rules():
    with pytest.raises(ConfigError, match="multiple of update.prompts_per_update"):
        _config(**{"data.prompts_per_step": 5})
    with pytest.raises(ConfigError, match="multiple of trainer.num_workers"):
        _config(**{"update.prompts_per_update": 3, "data.prompts_per_step": 3})
    with pytest.raises(ConfigError, match="vllm needs trainer.use_gpu"):
        validate_config(TrainConfig, {"rollout": {"engine": {"backend": "vllm"}}})
    ds = resolve_deepspeed(_config())
    # 2 prompts per update / 2 workers x 4 responses = 4 sequences per worker, micro-batches of 3
    assert (
        ds["train_micro_batch_size_per_gpu"],
        ds["gradient_accumulation_steps"],
        ds["train_batch_size"],
    ) == (3, 2, 12)
    assert ds["gradient_clipping"] == 1.0 and ds["zero_optimization"]["stage"] == 2


def test_profiles_load():
    from schemas.base import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    tiny = load_config(TrainConfig, root / "train_tiny.yaml")
    assert tiny.trainer.use_gpu is False and resolve_deepspeed(tiny)["bf16"]["enabled"] is False
    big = load_config(TrainConfig, root / "train_qwen2.5-vl-7b.yaml")
    assert (big.rollout.n, big.rollout.temperature, big.rollout.top_p) == (10, 0.7, 0.99)
    assert (big.data.prompts_per_step, big.update.prompts_per_update, big.optim.lr) == (512, 128, 1e-6)
    assert big.algorithm.kl == "low_var_kl" and big.algorithm.kl_coef == 0.01 and big.data.epochs == 15
    assert resolve_deepspeed(big)["bf16"]["enabled"] is True and big.rollout.engine.backend == "vllm"


# ---------------------------------------------------------------------------- pieces


def test_ray_workers_mute_the_placement_group_cleaner():
    """Without a dashboard the cleaner's state-API polls all fail; its warnings must not flood the console."""
    import importlib
    import logging

    from mmupt.ray_local import job_runtime_env
    from stages.train.job import worker_env

    env = job_runtime_env(worker_env(_config()), local=True)
    module, _, name = env["worker_process_setup_hook"].rpartition(".")
    cleaner_log = logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner")
    cleaner_log.setLevel(logging.NOTSET)
    getattr(importlib.import_module(module), name)()  # what each Ray worker runs at start-up
    assert not cleaner_log.isEnabledFor(logging.WARNING) and cleaner_log.isEnabledFor(logging.ERROR)
    assert env["env_vars"]["DS_ACCELERATOR"] == "cpu"
    # no preemption watcher on a private cluster; a user's cluster keeps Ray's default
    assert env["env_vars"]["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "0"
    assert "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER" not in job_runtime_env({}, local=False)["env_vars"]


def test_a_private_ray_cluster_listens_on_loopback_only(ray_cluster):
    """Ray binds the node's outward interface by default; the cluster a job starts for itself must not."""
    import psutil

    loopback = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    listening = [
        (proc.name(), conn.laddr.ip, conn.laddr.port)
        for proc in psutil.Process().children(recursive=True)
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening, "no Ray process listens at all: the check would be empty"
    assert [entry for entry in listening if entry[1] not in loopback] == []


def test_sampler_order_is_deterministic_and_covers_each_epoch():
    sampler = PromptSampler(n_original=10, n_synthetic=0, prompts_per_step=3, synthetic_ratio=None, seed=7)
    assert sampler.steps_per_epoch == 3  # the 10th prompt waits for the next epoch's shuffle
    epoch0 = [i for step in (1, 2, 3) for _, i in sampler.batch(step)]
    assert len(set(epoch0)) == 9  # no prompt twice within an epoch
    assert sampler.batch(2) == PromptSampler(10, 0, 3, None, 7).batch(2)  # a pure function of the step
    assert sampler.batch(4) != sampler.batch(1) or sampler.batch(5) != sampler.batch(2)  # reshuffled
    assert PromptSampler(10, 0, 3, None, 8).batch(1) != sampler.batch(1) or PromptSampler(
        10, 0, 3, None, 8
    ).batch(2) != sampler.batch(2)
    assert shard(list(range(6)), 1, 2) == [1, 3, 5]


def test_sampler_mixes_synthetic_by_ratio():
    sampler = PromptSampler(n_original=20, n_synthetic=5, prompts_per_step=8, synthetic_ratio=0.25, seed=0)
    batch = sampler.batch(1)
    assert sum(syn for syn, _ in batch) == 2 and sampler.original_per_step == 6
    assert sampler.steps_per_epoch == 3 and sampler.total_steps(2.0, None) == 6
    many = [ref for step in range(1, 7) for ref in sampler.batch(step) if ref[0]]
    assert {i for _, i in many} == set(range(5))  # the synthetic pool cycles on its own


def test_frozen_teacher_rewards_agreement_with_its_fixed_label():
    frozen = RewardConfig(teacher="frozen")
    g = score_group(
        ["\\boxed{4}", "\\boxed{5}", "x", "\\boxed{4}"], "5", frozen, TeacherLabel("4", 0.7, None)
    )
    assert g.rewards == [1.0, 0.0, 0.0, 1.0] and g.pseudo_label == "4" and g.label_correct is False
    none = score_group(["\\boxed{4}"], None, frozen, TeacherLabel(None, 0.3, "teacher_low_agreement"))
    assert not none.trainable and none.skip_reason == "teacher_low_agreement" and none.rewards == []
    with pytest.raises(ValueError, match="TeacherLabel"):
        score_group(["\\boxed{4}"], None, frozen)
    with pytest.raises(Exception, match="frozen needs reward.kind"):
        validate_config(TrainConfig, {"reward": {"kind": "oracle", "teacher": "frozen"}})


def test_teacher_labels_cover_the_job_and_round_trip(samples, tmp_path):
    from mmupt.errors import MmuptError
    from stages.train.teacher import job_prompts, read_labels, vote_labels, write_labels

    pool = load_prompts([samples])
    sampler = PromptSampler.for_pool(pool, 4, None, 0)
    prompts = job_prompts(pool, sampler, 3)  # 3 steps of 4 from 8 prompts: both epochs' first batch
    expected = [pool.get(ref).id for step in (1, 2, 3) for ref in sampler.batch(step)]
    assert [p.id for p in prompts] == list(dict.fromkeys(expected))
    config = _config(**{"reward.teacher": "frozen"})
    texts = [["\\boxed{3}", "\\boxed{3}", "\\boxed{4}"], ["\\boxed{3}", "\\boxed{4}"]] + [["x"]] * (
        len(prompts) - 2
    )
    labels = vote_labels(prompts, texts, config)
    first, tied = labels[prompts[0].id], labels[prompts[1].id]
    assert first.label == "3" and first.skip_reason is None
    assert tied.label is None and tied.skip_reason == "teacher_tie"
    write_labels(labels, tmp_path)
    assert read_labels(tmp_path) == labels
    with pytest.raises(MmuptError, match="start a new --out"):
        read_labels(tmp_path / "elsewhere")


def test_rewards_vote_and_oracle():
    vote = score_group(["\\boxed{3}", "so \\boxed{3}", "\\boxed{4}", "no answer"], "3", RewardConfig())
    assert vote.pseudo_label == "3" and vote.rewards == [1.0, 1.0, 0.0, 0.0] and vote.label_correct is True
    tie = score_group(["\\boxed{3}", "\\boxed{4}"], None, RewardConfig())
    assert tie.skip_reason == "tie" and not tie.trainable and tie.rewards == []
    oracle = score_group(["\\boxed{4}", "\\boxed{4}", "\\boxed{3}"], "3", RewardConfig(kind="oracle"))
    assert oracle.rewards == [0.0, 0.0, 1.0] and oracle.pseudo_label == "3" and oracle.label_correct is False
    assert (
        score_group(["\\boxed{4}", "\\boxed{4}"], None, RewardConfig(kind="oracle")).skip_reason
        == "no_oracle"
    )


def test_response_logprobs_align_with_full_log_softmax(random_model):
    """The (B, R) log-probs gathered from the kept logits are exactly the response tokens' log-probs."""
    from mmupt.modeling.loader import load_model_and_processor
    from stages.train.update import TrainSequence, build_micro_batch, response_logprobs

    model, processor = load_model_and_processor(random_model)
    ids = processor.tokenizer("so \\boxed{3}", add_special_tokens=False)["input_ids"]
    seqs = [
        TrainSequence(QUESTION, [_png(3)], ids, 1.0),
        TrainSequence(QUESTION + " Count carefully, please.", [_png(2)], ids[:2], -1.0),
        TrainSequence("No image here?", [], ids + ids, 0.5),
    ]
    mb = build_micro_batch(processor, seqs)
    with torch.no_grad():
        got, entropy = response_logprobs(model, mb, temperature=0.7, entropy="detached")
        logits = model(**mb.inputs, use_cache=False).logits.float() / 0.7  # (B, L, V)
    logp = torch.log_softmax(logits, dim=-1)
    lengths = mb.inputs["attention_mask"].sum(1)
    for b, seq in enumerate(seqs):
        end = int(lengths[b])
        start = end - len(seq.response)
        want = torch.stack(
            [logp[b, t - 1, tok] for t, tok in zip(range(start, end), seq.response, strict=True)]
        )
        assert torch.allclose(got[b, : len(seq.response)], want, atol=1e-5)
        assert mb.mask[b].sum() == len(seq.response)
    assert entropy is not None and entropy.shape == got.shape and torch.isfinite(entropy).all()


def test_trainer_scores_what_the_engine_sampled(random_model):
    """The update's forward (training layout, right padding, M-RoPE from the model) must see the
    same context the engine sampled in (shared prefix, left padding, explicit positions): its
    argmax at every response position reproduces the engine's greedy tokens, for prompts of
    different lengths in one micro-batch. A mismatch would train a policy other than the sampler."""
    from mmupt.engine.base import GenerationRequest
    from mmupt.engine.hf import HFEngine
    from schemas.engine import SamplingParams
    from stages.train.rollout import response_ids, vision_token_ids
    from stages.train.update import TrainSequence, build_micro_batch

    engine = HFEngine.from_pretrained(random_model)
    problems = [QUESTION, QUESTION + " Count carefully, please, and box it.", "<image>Which color?"]
    images = [[_png(3)], [_png(2, "blue")], [_png(1)]]
    requests = [
        GenerationRequest(f"p{i}", q, im) for i, (q, im) in enumerate(zip(problems, images, strict=True))
    ]
    completions = engine.generate(requests, SamplingParams(n=1, temperature=0.0, max_new_tokens=12))
    eot = engine.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    seqs = [
        TrainSequence(q, im, response_ids(c[0], eot), 0.0)
        for q, im, c in zip(problems, images, completions, strict=True)
    ]
    mb = build_micro_batch(engine.processor, seqs)
    with torch.no_grad():
        logits = engine.model(**mb.inputs, logits_to_keep=mb.logits_to_keep, use_cache=False).logits
    logits[..., sorted(vision_token_ids(engine.processor))] = -torch.inf  # the engine never samples these
    for b, seq in enumerate(seqs):
        predicted = logits[b].argmax(-1)[mb.index[b][: len(seq.response)]].tolist()
        assert predicted == seq.response, (
            f"row {b}: the trainer's argmax differs from the engine's greedy tokens"
        )


def test_rollout_logprobs_are_the_trainers_old_logprobs(random_model):
    """algorithm.old_logprobs: rollout skips a forward pass by using the log-probs the engine
    recorded while sampling; they must be what the trainer would recompute (full vocabulary,
    temperature-scaled, the stop token included), for n samples of prompts of different lengths."""
    from mmupt.engine.base import GenerationRequest
    from mmupt.engine.hf import HFEngine
    from schemas.engine import SamplingParams
    from stages.train.rollout import response_ids
    from stages.train.update import TrainSequence, build_micro_batch, response_logprobs

    engine = HFEngine.from_pretrained(random_model)
    problems = [QUESTION, QUESTION + " Count carefully, please, and box it."]
    images = [[_png(3)], [_png(2, "blue")]]
    requests = [
        GenerationRequest(f"p{i}", q, im) for i, (q, im) in enumerate(zip(problems, images, strict=True))
    ]
    sampling = SamplingParams(n=3, temperature=0.7, max_new_tokens=10, seed=5, logprobs=True)
    completions = engine.generate(requests, sampling)
    plain = engine.generate(requests, sampling.model_copy(update={"logprobs": False}))
    assert [[c.token_ids for c in g] for g in plain] == [[c.token_ids for c in g] for g in completions]
    eot = engine.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    seqs = [
        TrainSequence(q, im, response_ids(c, eot), 0.0, c.logprobs)
        for q, im, group in zip(problems, images, completions, strict=True)
        for c in group
    ]
    assert all(len(s.rollout_logprobs) == len(s.response) for s in seqs)
    mb = build_micro_batch(engine.processor, seqs)
    with torch.no_grad():
        recomputed, _ = response_logprobs(engine.model, mb, sampling.temperature)
    assert mb.rollout_logprobs is not None
    assert torch.allclose(recomputed * mb.mask, mb.rollout_logprobs * mb.mask, atol=1e-4)


def test_worker_user_error_reaches_the_driver_as_itself(tmp_path):
    """Ray Train wraps a worker's exception; a user error must come out as the same one-line error,
    and anything else as a TrainJobError naming the exception and the resume hint."""
    from ray.train import WorkerGroupError
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback

    from stages.train.job import _explain_failure

    user = InputDataError("samples.parquet: row 3: empty problem")
    wrapped = WorkerGroupError("boom", {1: UserExceptionWithTraceback(user, "Traceback ...")})
    assert _explain_failure(wrapped, tmp_path, []) is user
    bug = WorkerGroupError("boom", {0: UserExceptionWithTraceback(KeyError("pixel_values"), "Traceback ...")})
    error = _explain_failure(bug, tmp_path, [{"step": 4}])
    assert isinstance(error, TrainJobError)
    assert "after step 4: KeyError: 'pixel_values' (no checkpoint yet)" in str(error)


def test_a_lost_worker_is_a_transient_error_that_the_campaign_retries(tmp_path):
    """A worker process that died (SIGKILL, OOM) is not a bug in the inputs: its one-line error is
    transient, so the campaign's train task is retried and resumes from the checkpoint (the soak's
    ray-worker kill point, docs/FAULTS.md); an exception the training code raised is not retried."""
    from prefect.states import Failed
    from ray.exceptions import ActorDiedError
    from ray.train import WorkerGroupError
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback, WorkerHealthCheckFailedError

    from stages.train.job import WorkerLostError, _explain_failure
    from tasks.policy import is_transient

    died = WorkerHealthCheckFailedError(
        "The actor is dead because its worker process has died.", ActorDiedError()
    )
    lost = _explain_failure(WorkerGroupError("boom", {1: died}), tmp_path, [{"step": 2}])
    assert isinstance(lost, WorkerLostError) and "process died after step 2" in str(lost)
    assert is_transient(None, None, Failed(data=lost))
    bug = WorkerGroupError("boom", {0: UserExceptionWithTraceback(KeyError("pixel_values"), "Traceback ...")})
    assert not is_transient(None, None, Failed(data=_explain_failure(bug, tmp_path, [])))


def test_responses_with_vision_placeholders_are_not_trained(random_model):
    """A sampled <|image_pad|> would break the training forward (features vs placeholders): drop it."""
    from mmupt.engine.base import Completion
    from mmupt.modeling.loader import load_processor
    from stages.train.rollout import trainable_response, vision_token_ids

    tokenizer = load_processor(random_model).tokenizer
    vision = vision_token_ids(load_processor(random_model))
    pad, eot = tokenizer.convert_tokens_to_ids("<|image_pad|>"), tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert pad in vision and eot not in vision
    assert trainable_response(Completion("x", [40, 41], "stop"), eot, vision) == [40, 41, eot]
    assert trainable_response(Completion("x", [40, 41], "length"), eot, vision) == [40, 41]
    assert trainable_response(Completion("x", [40, pad], "stop"), eot, vision) is None


def test_one_pool_sampling_reaches_synthetic_rows():
    """Without data.synthetic_ratio, a synthetic-only source is one pool (regression: IndexError)."""
    from stages.train.data import Prompt, PromptPool, PromptSampler

    synthetic = [Prompt(f"s{i}", f"question {i}?", [b"png"], None, True) for i in range(6)]
    pool = PromptPool(original=[], synthetic=synthetic, sources={})
    sampler = PromptSampler.for_pool(pool, prompts_per_step=3, synthetic_ratio=None, seed=0)
    sampler.check("test")
    seen = {pool.get(ref).id for step in (1, 2) for ref in sampler.batch(step)}  # one epoch, 1-based steps
    assert seen == {p.id for p in synthetic}
