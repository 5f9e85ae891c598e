"""Create the embedded default's starting model: a fresh tiny Qwen2.5-VL with a tokenizer
trained on the world's text. A real campaign skips this and starts from a checkpoint directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc

from mmupt.modeling.factory import create_tiny_model
from mmupt.prompts import REASONING_INSTRUCTION
from mmupt.store import ArtifactWriter, Manifest, artifact_hash, read_table
from schemas.layout import MODEL_DIR
from schemas.model import TinyModelConfig
from stages.synthesis.prompts import direct_messages, in_context_messages, reply_text


def world_texts(world_dir: Path) -> Iterator[str]:
    """Text the tokenizer learns from: every question, and rationales of the labelled split only.

    Dev rows are left out: the dev split was added after the others, and a tokenizer (hence a
    model) that changed with ``n_dev`` would make runs with and without it incomparable.
    """
    table = read_table(
        world_dir,
        "world",
        columns=["problem", "answer", "solution", "split", "sibling_problem", "sibling_answer"],
    )
    table = table.filter(pc.not_equal(table["split"], "dev"))
    yield REASONING_INSTRUCTION
    yield from table["problem"].to_pylist()
    labelled = table.filter(pc.equal(table["split"], "sft"))
    yield from labelled["solution"].to_pylist()
    # The synthesis prompts and replies, so question writing tokenises as compactly as answering.
    for row in labelled.slice(0, 200).to_pylist():
        for message in (in_context_messages(row["problem"], row["answer"], 1), direct_messages(1)):
            yield message[0]["content"][-1]["text"]
        yield reply_text(row["sibling_problem"], row["sibling_answer"])


def bootstrap_tiny_model(world_dir: str | Path, config: TinyModelConfig, out_dir: str | Path) -> Manifest:
    """Publish the fresh model as an artifact (``out_dir/model``, atomically, with a manifest)."""
    world_dir = Path(world_dir)
    with ArtifactWriter(
        out_dir, "model", config=config, inputs={"world": artifact_hash(world_dir)}
    ) as writer:
        create_tiny_model(config, world_texts(world_dir), writer.workdir / MODEL_DIR)
    assert writer.manifest is not None  # set when the artifact is published
    return writer.manifest
