"""Frozen round-level teacher: the starting policy's vote, taken once and held fixed for the job.

Why: with the reference online vote, every step's label is the majority of the responses being
trained, so the cheapest way to raise the reward is to agree, on anything: on a tiny model the
policy slides within 10-30 steps to constant answers that ignore the image (benchmarks/REPORT.md).
A frozen teacher breaks that loop. Before step 1 the starting policy samples ``reward.teacher_n``
responses for every prompt the job will train on; their vote (same ``reward.vote`` rules) is the
prompt's label for the whole job, and each later response is rewarded for matching it. The policy
can no longer move its own target; in a campaign the next round's model is the next teacher, so
labels still improve round by round. No hidden label is read: ``oracle_answer`` only feeds the
``label_correct`` diagnostic.

Each rank labels its strided share with its own sampling seed, then all ranks exchange their
labels, so every rank holds the full table; rank 0 writes it to ``teacher_labels.parquet`` (part
of the training artifact), which a resumed job reads back instead of relabelling with a policy
that has already moved.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmupt.answers import answers_equivalent, extract_answer
from mmupt.errors import MmuptError
from schemas import metrics
from schemas.engine import SamplingParams
from schemas.train import TrainConfig
from stages.train.data import Prompt, PromptPool, PromptSampler, shard
from stages.train.rewards import TeacherLabel
from stages.train.rollout import Rollouts
from stages.vote import vote_group

TEACHER_FILE = "teacher_labels.parquet"
TEACHER_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("pseudo_label", pa.string()),
        ("vote_share", pa.float64()),
        ("skip_reason", pa.string()),
    ]
)


def teacher_seed(seed: int, rank: int) -> int:
    digest = hashlib.sha256(f"mmupt-teacher|{seed}|{rank}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def job_prompts(pool: PromptPool, sampler: PromptSampler, total_steps: int) -> list[Prompt]:
    """Every distinct prompt the job's steps will sample, in first-use order (only those need labels)."""
    seen: set[str] = set()
    out: list[Prompt] = []
    for step in range(1, total_steps + 1):
        for ref in sampler.batch(step):
            prompt = pool.get(ref)
            if prompt.id not in seen:
                seen.add(prompt.id)
                out.append(prompt)
    return out


def vote_labels(
    prompts: Sequence[Prompt], texts: Sequence[Sequence[str]], config: TrainConfig
) -> dict[str, TeacherLabel]:
    """The teacher's label of each prompt from its sampled response texts (pure)."""
    labels = {}
    for prompt, responses in zip(prompts, texts, strict=True):
        vote = vote_group([extract_answer(t) for t in responses], config.reward.vote)
        reason = f"teacher_{vote.skip_reason}" if vote.skip_reason else None
        labels[prompt.id] = TeacherLabel(
            vote.pseudo_label if reason is None else None, vote.vote_share, reason
        )
    return labels


def sample_labels(
    generate: Callable[[Sequence[Prompt], SamplingParams], Rollouts],
    prompts: Sequence[Prompt],
    config: TrainConfig,
    rank: int,
    world_size: int,
) -> dict[str, TeacherLabel]:
    """This rank's share of the labels, sampled with ``generate`` (the rank's rollout engine)."""
    mine = shard(list(prompts), rank, world_size)
    if not mine:
        return {}
    r = config.rollout
    sampling = SamplingParams(
        n=config.reward.teacher_n,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_response_length,
        seed=teacher_seed(config.trainer.seed, rank),
    )
    rollouts = generate(mine, sampling)
    texts = [[c.text for c in group] for group in rollouts.completions]
    return vote_labels(rollouts.prompts, texts, config)


def write_labels(labels: dict[str, TeacherLabel], out_dir: Path) -> Path:
    """Atomically write the label table (tmp file + rename)."""
    path = out_dir / TEACHER_FILE
    table = pa.Table.from_pylist(
        [
            {"prompt_id": pid, "pseudo_label": t.label, "vote_share": t.share, "skip_reason": t.skip_reason}
            for pid, t in labels.items()
        ],
        schema=TEACHER_SCHEMA,
    )
    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def read_labels(out_dir: Path) -> dict[str, TeacherLabel]:
    path = out_dir / TEACHER_FILE
    if not path.is_file():
        raise MmuptError(
            f"{path}: missing, but the job resumes with reward.teacher frozen: the labels of the interrupted run "
            "are gone, so start a new --out (relabelling with the trained policy would change the teacher)"
        )
    return {
        row["prompt_id"]: TeacherLabel(row["pseudo_label"], row["vote_share"], row["skip_reason"])
        for row in pq.read_table(path, schema=TEACHER_SCHEMA).to_pylist()
    }


def teacher_stats(labels: dict[str, TeacherLabel], prompts: Sequence[Prompt]) -> dict[str, float]:
    """Labelled share and (diagnostic, from hidden labels if present) label accuracy."""
    n = max(1, len(labels))
    labelled = {pid: t for pid, t in labels.items() if t.label is not None}
    oracle = {p.id: p.oracle_answer for p in prompts if p.oracle_answer is not None}
    judged = [
        answers_equivalent(t.label, oracle[pid]) for pid, t in labelled.items() if pid in oracle and t.label
    ]
    out = {metrics.TEACHER_PROMPTS: float(len(labels)), metrics.TEACHER_LABELLED_SHARE: len(labelled) / n}
    if judged:
        out[metrics.TEACHER_LABEL_ACCURACY] = sum(judged) / len(judged)
    return out
