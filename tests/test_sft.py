"""First SFT improves held-out accuracy over the untrained model (real training, tiny scale)."""

from __future__ import annotations

import pytest

from mmupt.store import read_manifest, read_table
from schemas.layout import model_in
from schemas.model import TinyModelConfig
from schemas.sft import SFTConfig
from schemas.world import WorldConfig
from stages.bootstrap import bootstrap_tiny_model
from stages.sft import run_sft
from stages.world import generate_world


@pytest.mark.slow
def test_sft_improves_heldout_accuracy(tmp_path):
    world = tmp_path / "world"
    # compare (A/B) and max give a tiny model something it can learn within a few dozen steps
    generate_world(
        WorldConfig(seed=3, version=1, n_sft=400, n_heldout=40, n_unlabeled=0, tasks=["compare", "count"]),
        world,
    )
    bootstrap_tiny_model(
        world,
        TinyModelConfig(
            hidden_size=64,
            intermediate_size=192,
            num_hidden_layers=2,
            vision_depth=1,
            vision_hidden_size=64,
            num_attention_heads=2,
            num_key_value_heads=1,
        ),
        tmp_path / "base",
    )
    config = SFTConfig(
        epochs=4.0,
        batch_size=16,
        learning_rate=3e-3,
        warmup_steps=5,
        eval_rows=40,
        eval_max_new_tokens=32,
        question_writing_share=0.0,
    )
    result = run_sft(model_in(tmp_path / "base"), world, tmp_path / "sft", config)

    assert (
        result.accuracy_before is not None and result.accuracy_before < 0.1
    )  # random weights: no boxed answers
    assert result.accuracy_after > result.accuracy_before + 0.2
    assert result.final_loss < 1.5
    manifest = read_manifest(tmp_path / "sft")
    assert manifest.stats["accuracy_after"] == result.accuracy_after
    predictions = read_table(tmp_path / "sft", "predictions")
    assert predictions.num_rows == 40
    assert sum(predictions["correct"].to_pylist()) / 40 == pytest.approx(result.accuracy_after)
    assert (result.model_dir / "model.safetensors").is_file()
