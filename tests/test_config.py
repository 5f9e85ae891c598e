"""Configs are strict: a wrong key or type fails with one line naming the key and the file."""

from __future__ import annotations

import pytest

from mmupt.errors import ConfigError
from schemas.base import load_config
from schemas.demo import EmbeddedConfig
from schemas.engine import SamplingParams
from schemas.model import TinyModelConfig


def test_defaults_load_without_file():
    cfg = load_config(EmbeddedConfig, None)
    assert cfg.sft.batch_size > 0 and cfg.model.hidden_size % cfg.model.num_attention_heads == 0


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sft:\n  lerning_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(EmbeddedConfig, path)
    message = str(err.value)
    assert "bad.yaml" in message and "sft.lerning_rate" in message and "unknown key" in message


def test_wrong_type_names_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sft:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: sft.batch_size: .*integer"):
        load_config(EmbeddedConfig, path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(EmbeddedConfig, tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("sft: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(EmbeddedConfig, broken)


def test_overrides_apply_dotted_keys(tmp_path):
    cfg = load_config(EmbeddedConfig, None, overrides={"sft.epochs": 0.5, "world.seed": 7})
    assert cfg.sft.epochs == 0.5 and cfg.world.seed == 7


def test_cross_field_rules_explain_the_fix():
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        TinyModelConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match="set n: 1 or temperature > 0"):
        SamplingParams(n=4, temperature=0.0)


def test_config_hash_is_stable_and_sensitive():
    a, b = load_config(EmbeddedConfig, None), load_config(EmbeddedConfig, None)
    assert a.config_hash() == b.config_hash()
    b.sft.epochs = 3.0
    assert a.config_hash() != b.config_hash()


def test_each_round_trains_with_its_own_seed_and_window():
    """Round 1 keeps the configured seed; later rounds move on, so a round after a rejection differs."""
    from schemas.campaign import CampaignConfig

    config = CampaignConfig.model_validate({"train": {"trainer": {"seed": 5}}})
    assert [config.round_train(k).trainer.seed for k in (1, 2, 3)] == [5, 6, 7]
    assert config.train.trainer.seed == 5  # the campaign's own config is untouched
    assert config.round_window(2) is None
    windowed = config.model_copy(update={"prompts_per_round": 64})
    window = windowed.round_window(3)
    assert (window.index, window.size, window.seed) == (3, 64, 5)
    with pytest.raises(ValueError, match="prompts_per_round"):
        CampaignConfig.model_validate({"prompts_per_round": 0})
