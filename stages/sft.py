"""First SFT: the supervised warm start that gives UPT a competent, imperfect model to improve.

MM-UPT starts from an instruction-tuned model. The embedded default has no such model, so it
trains its tiny Qwen2.5-VL from scratch on the world's labelled split, teacher-forcing the short
rationale that ends in ``\\boxed{answer}`` (the response format every later stage expects), then
measures greedy accuracy on the held-out split with the same engine the rest of the pipeline uses.

Departures from a standard SFT recipe, on purpose: loss only on response tokens; a high learning
rate with warm-up and cosine decay, because the model starts from random weights; the run is
short by design (the target is a model at roughly 30-70% held-out accuracy, leaving room for UPT).

    run_sft(model_dir, world_dir, out_dir, SFTConfig())   # or: mmupt sft --model DIR --world DIR --out DIR
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch

from mmupt.engine.hf import HFEngine
from mmupt.errors import InputDataError
from mmupt.modeling.inputs import prompt_text, training_batch
from mmupt.modeling.loader import load_model_and_processor
from mmupt.store import ArtifactWriter, Manifest, artifact_hash, read_table
from schemas.engine import SamplingParams
from schemas.sft import SFTConfig
from stages.synthesis.prompts import direct_messages, in_context_messages, reply_text
from stages.world_eval import AccuracyReport, labelled_accuracy

log = logging.getLogger(__name__)

MODEL_SUBDIR = "model"


@dataclass
class SFTResult:
    model_dir: Path
    steps: int
    final_loss: float
    accuracy_before: float | None
    accuracy_after: float
    by_task: dict[str, float]
    seconds: float
    manifest: Manifest


GREEDY_CHECK_BATCH = 64


def split_rows(world_dir: Path, split: str) -> pa.Table:
    table = read_table(world_dir, "world")
    rows = table.filter(pc.equal(table["split"], split))
    if rows.num_rows == 0:
        raise InputDataError(f"{world_dir}: the world artifact has no rows in split {split!r}")
    return rows


def lr_at(step: int, total: int, config: SFTConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def sft_examples(rows: pa.Table, config: SFTConfig) -> list[tuple[list[dict] | None, str, list[bytes], str]]:
    """(messages or None for the reasoning prompt, problem, images, target text) for every example.

    Every row teaches reasoning (``problem`` -> ``solution``). A ``question_writing_share`` of the
    rows also teaches the synthesis task with the synthesis stage's own prompts, alternating
    in-context and direct, the target being the row's sibling question in the reply form the
    synthesis parser reads.
    """
    columns = ["problem", "images", "answer", "solution", "sibling_problem", "sibling_answer"]
    records = rows.select(columns).to_pylist()
    examples: list[tuple[list[dict] | None, str, list[bytes], str]] = [
        (None, r["problem"], r["images"], r["solution"]) for r in records
    ]
    rng = random.Random(config.seed + 1)
    writers = rng.sample(range(len(records)), round(config.question_writing_share * len(records)))
    for k, i in enumerate(writers):
        r = records[i]
        n_images = len(r["images"])
        messages = (
            in_context_messages(r["problem"], r["answer"], n_images)
            if k % 2 == 0
            else direct_messages(n_images)
        )
        examples.append(
            (messages, r["problem"], r["images"], reply_text(r["sibling_problem"], r["sibling_answer"]))
        )
    return examples


def train_epochs(model, processor, rows: pa.Table, config: SFTConfig) -> tuple[int, float]:
    """Teacher-forced training on every ``sft_examples`` pair; returns (steps, last loss)."""
    examples = sft_examples(rows, config)
    end_of_turn = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompts = [
        prompt_text(processor, problem, len(images), messages) for messages, problem, images, _ in examples
    ]
    targets = [
        processor.tokenizer(t, add_special_tokens=False)["input_ids"] + [end_of_turn] for *_, t in examples
    ]
    records = [{"images": images} for _, _, images, _ in examples]
    rng = random.Random(config.seed)
    total = max(1, math.ceil(config.epochs * len(records) / config.batch_size))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    model.train()
    order: list[int] = []
    loss_value = float("nan")
    for step in range(total):
        if len(order) < config.batch_size:
            fresh = list(range(len(records)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch_idx, order = order[: config.batch_size], order[config.batch_size :]
        batch = training_batch(
            processor,
            [prompts[i] for i in batch_idx],
            [records[i]["images"] for i in batch_idx],
            [targets[i] for i in batch_idx],
        ).to(config.device)
        batch.pop("response_mask")
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, config)
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        loss_value = float(loss.detach())
        if step % 50 == 0 or step == total - 1:
            log.info(
                "sft step %d/%d loss %.4f lr %.2e",
                step + 1,
                total,
                loss_value,
                optimizer.param_groups[0]["lr"],
            )
    model.eval()
    return total, loss_value


def heldout_check(engine: HFEngine, rows: pa.Table, config: SFTConfig) -> AccuracyReport:
    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=config.eval_max_new_tokens)
    return labelled_accuracy(engine, rows.slice(0, config.eval_rows), sampling)


def run_sft(
    model_dir: str | Path,
    world_dir: str | Path,
    out_dir: str | Path,
    config: SFTConfig,
    measure_before: bool = True,
) -> SFTResult:
    """Fine-tune ``model_dir`` on the world's ``sft`` split; write the model and held-out predictions.

    The artifact at ``out_dir`` holds ``model/`` (HF checkpoint, safetensors) and a
    ``predictions`` table of the held-out check; stats carry the accuracies.
    """
    started = time.perf_counter()
    world_dir, out_dir = Path(world_dir), Path(out_dir)
    torch.manual_seed(config.seed)
    train_rows = split_rows(world_dir, "sft")
    if config.max_rows:
        train_rows = train_rows.slice(0, config.max_rows)
    heldout = split_rows(world_dir, "heldout")
    model, processor = load_model_and_processor(model_dir, config.device)
    # Greedy decoding: the batch size changes no output (rows are independent), only the speed.
    engine = HFEngine(model, processor, model_id=str(model_dir), batch_size=GREEDY_CHECK_BATCH)
    before = heldout_check(engine, heldout, config).accuracy if measure_before else None
    steps, loss = train_epochs(model, processor, train_rows, config)
    after = heldout_check(engine, heldout, config)
    with ArtifactWriter(out_dir, "sft", config=config, inputs={"world": artifact_hash(world_dir)}) as writer:
        model.save_pretrained(writer.workdir / MODEL_SUBDIR, safe_serialization=True)
        processor.save_pretrained(writer.workdir / MODEL_SUBDIR)
        writer.write("predictions", after.predictions)
        writer.stats.update(
            {
                "steps": steps,
                "final_loss": loss,
                "accuracy_before": before,
                "accuracy_after": after.accuracy,
                "accuracy_by_task": after.by_task,
                "train_rows": train_rows.num_rows,
            }
        )
    return SFTResult(
        model_dir=out_dir / MODEL_SUBDIR,
        steps=steps,
        final_loss=loss,
        accuracy_before=before,
        accuracy_after=after.accuracy,
        by_task=after.by_task,
        seconds=time.perf_counter() - started,
        manifest=writer.manifest,
    )
