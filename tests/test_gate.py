"""The gate decides on ``gate.benchmarks`` only, and the campaign config refuses a gate or premise it cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmupt.errors import ConfigError, MmuptError
from schemas.base import load_config, validate_config
from schemas.campaign import CampaignConfig, GateConfig
from stages.gate import gate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CHAMPION = {"world": 0.50, "world-dev": 0.50}


def test_only_gate_benchmarks_can_reject_a_round():
    held_out_drops = {"world": 0.30, "world-dev": 0.51}
    whole_suite = gate(CHAMPION, held_out_drops, GateConfig(tolerance=0.02))
    assert not whole_suite.promote and whole_suite.reason.startswith("world regressed by 0.200")
    on_dev = gate(CHAMPION, held_out_drops, GateConfig(tolerance=0.02, benchmarks=["world-dev"]))
    assert on_dev.promote and "on world-dev" in on_dev.reason and "not gated: world -0.200" in on_dev.reason
    assert on_dev.deltas == pytest.approx({"world": -0.2, "world-dev": 0.01})  # every delta is recorded
    dev_drops = gate(
        CHAMPION, {"world": 0.9, "world-dev": 0.4}, GateConfig(tolerance=0.02, benchmarks=["world-dev"])
    )
    assert not dev_drops.promote and dev_drops.reason == "world-dev regressed by 0.100 (> 0.020)"


def test_a_round_decides_from_its_scores_and_last_steps_only():
    from schemas.campaign import CollapseConfig
    from stages.gate import decide_round

    steps = [
        {"step": k, "vote/share_mean": share, "reward/mean": 0.5}
        for k, share in enumerate([0.6, 0.97, 0.99, 1.0], 1)
    ]
    gated = GateConfig(tolerance=0.02, benchmarks=["world-dev"])
    record = decide_round(
        2,
        Path("m"),
        {"world": 0.9, "world-dev": 0.55},
        CHAMPION,
        steps,
        [],
        gated,
        CollapseConfig(max_vote_share=0.98),
        timings={"timing_s/train": 3.0},
        mlflow_run_id="r",
    )
    assert (
        record.promote
        and record.outcome == "promoted"
        and record.deltas == pytest.approx({"world": 0.4, "world-dev": 0.05})
    )
    # signals are the means of the last 3 steps; a saturated vote is collapse, whatever the gate said
    assert record.signals["vote/share_mean"] == pytest.approx((0.97 + 0.99 + 1.0) / 3)
    assert record.collapse.startswith("vote share 0.987 > 0.980")
    assert (record.round, record.model_dir, record.timings, record.mlflow_run_id) == (
        2,
        "m",
        {"timing_s/train": 3.0},
        "r",
    )
    regressed = decide_round(
        3, Path("m"), {"world": 0.9, "world-dev": 0.4}, CHAMPION, [], [], gated, CollapseConfig()
    )
    assert not regressed.promote and regressed.signals == {} and regressed.collapse is None


def suite(**changes) -> dict:
    return {"benchmarks": [{"name": "world"}, {"name": "world-dev"}], **changes}


def test_gate_benchmarks_must_be_in_the_suite():
    config = validate_config(CampaignConfig, suite(gate={"benchmarks": ["world-dev"]}))
    assert config.gate.benchmarks == ["world-dev"]
    with pytest.raises(ConfigError, match=r"gate\.benchmarks: \['mathvista'\] not in the evaluation suite"):
        validate_config(CampaignConfig, suite(gate={"benchmarks": ["world-dev", "mathvista"]}), "c.yaml")


def test_world_dev_and_the_premise_need_dev_rows():
    no_dev = {"world": {"n_dev": 0}}
    with pytest.raises(ConfigError, match=r"world-dev` needs dev rows: set embedded.world.n_dev > 0"):
        validate_config(CampaignConfig, suite(embedded=no_dev))
    with pytest.raises(ConfigError, match=r"premise: .*embedded.world.n_dev is 0"):
        validate_config(CampaignConfig, {"embedded": no_dev})
    assert validate_config(CampaignConfig, {"embedded": no_dev, "premise": None}).premise is None
    with pytest.raises(ConfigError, match=r"premise.split: 'test' is not a world split"):
        validate_config(CampaignConfig, {"premise": {"split": "test"}})
    real = {"embedded": None, "start_model": "/m", "sources": [{"paths": ["/d"]}], "benchmarks": []}
    with pytest.raises(ConfigError, match=r"benchmark `world-dev` needs the embedded world"):
        validate_config(CampaignConfig, {**real, "benchmarks": [{"name": "world-dev"}]})
    assert validate_config(CampaignConfig, real).premise.data is None  # no dev set: the flow skips the check


def test_the_test_campaign_gates_on_dev_rows():
    config = load_config(CampaignConfig, CONFIGS / "test_campaign.yaml")
    assert config.gate.benchmarks == ["world-dev"] and config.premise is not None


def test_missing_premise_data_fails_before_any_work(tmp_path):
    from flows.campaign import check_inputs

    model = tmp_path / "m"
    path = tmp_path / "c.yaml"
    path.write_text(
        f"embedded: null\nstart_model: {model}\nsources: [{{paths: [{tmp_path}]}}]\nbenchmarks: []\n"
        f"premise: {{data: {tmp_path / 'dev.parquet'}}}\n"
    )
    config = load_config(CampaignConfig, path)
    with pytest.raises(MmuptError, match=r"dev.parquet"):
        check_inputs(config.model_copy(update={"start_model": None}))  # only the premise path under test


def test_one_stop_rule_for_the_campaign_and_its_next_round(tmp_path):
    """Collapse or N rejected rounds in a row stop the campaign; a scheduled next round is refused."""
    import json

    from flows.campaign import continue_campaign
    from mmupt.errors import CampaignStoppedError
    from schemas.campaign import CampaignConfig, GateConfig
    from schemas.records import RoundRecord
    from stages.gate import campaign_stop, champion_record

    def record(k: int, promote: bool, collapse: str | None = None) -> RoundRecord:
        return RoundRecord(round=k, promote=promote, collapse=collapse, model_dir=f"m{k}", decision="")

    gate_config = GateConfig(max_consecutive_rejections=2)
    history = [record(0, True), record(1, True), record(2, False)]
    assert campaign_stop(history, gate_config) is None
    assert champion_record(history).round == 1
    stopped = [*history, record(3, False)]
    assert campaign_stop(stopped, gate_config) == "2 rejected rounds in a row"
    assert campaign_stop([*history, record(3, True, "vote share 0.99")], gate_config).startswith(
        "self-reward collapse"
    )
    assert champion_record(stopped).round == 1
    spent = record(3, False).model_copy(
        update={"premise_spent": True, "premise": {"verdict": "majority <= greedy"}}
    )
    assert campaign_stop([*history, spent], gate_config) == (
        "premise spent before round 3 trained (majority <= greedy)"
    )

    (tmp_path / "campaign.summary.json").write_text(
        json.dumps({"premise": None, "rounds": [r.model_dump() for r in stopped]})
    )
    config = CampaignConfig(gate=gate_config, premise=None)
    with pytest.raises(CampaignStoppedError, match=r"stopped after round 3: 2 rejected rounds .*--round 4"):
        continue_campaign(config, tmp_path)
