"""Orchestration end to end: a real Prefect server (test harness), a real MLflow sqlite store,
real Ray + DeepSpeed training, all on the embedded default at micro scale.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.runtime import configure
from mmupt.errors import MmuptError
from schemas import metrics
from schemas.base import load_config
from schemas.campaign import CampaignConfig

configure()
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "test_campaign.yaml"


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    from prefect.testing.utilities import prefect_test_harness

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def campaign(prefect_server, tmp_path_factory, monkeypatch_module):
    """A finished 2-round campaign; the mix stage of round 1 fails once with a transient error."""
    import stages.mix
    from flows.campaign import campaign_flow

    calls = {"n": 0}
    real = stages.mix.run_mix

    def flaky_run_mix(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup (injected by the test)")
        return real(*args, **kwargs)

    monkeypatch_module.setattr(stages.mix, "run_mix", flaky_run_mix)
    monkeypatch_module.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path_factory.mktemp("campaign")
    config = load_config(CampaignConfig, CONFIG)
    summary = campaign_flow(config, out)
    monkeypatch_module.setattr(stages.mix, "run_mix", real)
    return out, config, summary, calls


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.slow
def test_two_rounds_complete_with_a_retry(campaign):
    out, config, summary, calls = campaign
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2]
    assert calls["n"] >= 3  # round 1 failed once and was retried, round 2 ran once
    for k in (1, 2):
        decision = json.loads((out / f"round-{k}" / "decision.json").read_text())
        assert "world" in decision["scores"] and decision["decision"]
        assert (out / f"round-{k}" / "train" / "model" / "model.safetensors").is_file()
        assert "world-dev" in decision["decision"] and "not gated: world" in decision["decision"]
    # round 0 measured the premise (require_premise: false in the test config: it warns, training goes on)
    from schemas.premise import ROWS

    baseline = json.loads((out / "round-0" / "decision.json").read_text())
    assert baseline["premise"][ROWS] == 8 and summary["premise"] == baseline["premise"]


@pytest.mark.slow
def test_world_v1_is_stopped_before_self_reward_can_collapse(prefect_server, tmp_path, monkeypatch):
    """The control world: one templated step per answer, so the vote is never better than greedy.

    With the premise required (the default), round 0 measures majority@n <= greedy on the dev rows
    and the campaign stops before any self-reward round, instead of training into the collapse
    that the gate and the collapse detector used to catch only afterwards.
    """
    from flows.campaign import campaign_flow
    from mmupt.errors import PremiseFailedError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(
        CampaignConfig,
        CONFIG,
        {
            "embedded.world.version": 1,
            "embedded.world.n_dev": 24,
            "premise.rows": 24,
            "premise.min_gain": 0.0,
            "premise.require_premise": True,
        },
    )
    with pytest.raises(PremiseFailedError, match="self-reward has nothing to distil"):
        campaign_flow(config, tmp_path)
    assert not (tmp_path / "round-1").exists()


@pytest.mark.slow
def test_a_failed_premise_stops_the_campaign_before_training(prefect_server, tmp_path, monkeypatch):
    """require_premise: round 0 completes (baseline + premise), then the campaign stops with one line."""
    import mlflow
    from mlflow import MlflowClient

    from flows.campaign import campaign_flow
    from mmupt.errors import PremiseFailedError
    from schemas.premise import HOLDS, MAJORITY

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # min_gain 1.0: no model can pass, whatever the micro model's figures
    config = load_config(
        CampaignConfig, CONFIG, {"premise.min_gain": 1.0, "premise.require_premise": True, "rounds": 1}
    )
    with pytest.raises(PremiseFailedError) as stopped:
        campaign_flow(config, tmp_path)
    message = str(stopped.value)
    assert "\n" not in message and message.startswith("self-reward has nothing to distil for this model")
    assert "on 8 dev rows" in message and "require_premise: false" in message
    assert not (tmp_path / "round-1").exists()  # no training round started
    decision = json.loads((tmp_path / "round-0" / "decision.json").read_text())
    assert decision["premise"][HOLDS] == 0.0 and decision["premise"]["verdict"] in message
    assert set(decision["scores"]) == {"world", "world-dev"}
    summary = json.loads((tmp_path / "campaign.summary.json").read_text())
    assert summary["premise"] == decision["premise"] and summary["stop_reason"].startswith(
        "stopped after round 0"
    )
    mlflow.set_tracking_uri(summary["tracking_uri"])
    history = MlflowClient().get_metric_history(summary["mlflow_run_id"], MAJORITY)
    assert [(m.step, m.value) for m in history] == [(0, decision["premise"][MAJORITY])]


KNOWN_NOISE = (
    "Setting accelerator to CPU",  # DeepSpeed at import (mmupt.modeling.name_deepspeed_accelerator)
    "built successfully",  # DeepSpeed's op load, tee'd by Ray Train's print patch (mmupt.ray_local)
    "Token authentication is enabled",  # Ray's notice of its default (mmupt.ray_local)
    "FutureWarning",
    "Traceback",  # Ray Train's placement-group cleaner thread (mmupt.ray_local.private_cluster_callbacks)
)


@pytest.mark.slow
def test_a_campaign_killed_twice_resumes_to_the_uninterrupted_end(campaign, tmp_path):
    """SIGKILL the `mmupt campaign` command (with its Prefect server and Ray cluster) right after a
    stage's manifest is written, then again during GRPO; the third run finishes with the
    uninterrupted campaign's numbers and champion weights, re-makes no finished stage, leaves no
    readable half-artifact and one coherent MLflow history. The full set of kill points is
    benchmarks/fault_soak.py (docs/FAULTS.md)."""
    from tests.fault_harness import (
        KillPoint,
        exists,
        manifests,
        mlflow_state,
        outcome,
        printed,
        run_campaign,
        unreadable_artifacts,
        weights_digest,
    )

    _, _, reference, _ = campaign
    out, home = tmp_path / "campaign", tmp_path / "prefect"
    after_manifest = KillPoint("after-manifest", "", exists("round-1/mix/manifest.json"))
    first = run_campaign(CONFIG, out, home, kill=after_manifest, limit_s=600)
    assert first.fired and first.returncode == -9, first.output[-2000:]
    finished = manifests(out)
    assert out / "round-1" / "mix" in finished and unreadable_artifacts(out) == []

    during_grpo = KillPoint("grpo", "", printed("stages.train.job - step 1 "))
    second = run_campaign(CONFIG, out, home, kill=during_grpo, limit_s=600)
    assert second.fired and second.returncode == -9, second.output[-2000:]
    assert unreadable_artifacts(out) == []

    third = run_campaign(CONFIG, out, home, limit_s=600)
    assert third.returncode == 0, third.output[-3000:]
    end = outcome(out)
    assert end.scores == [r["scores"] for r in reference["rounds"]]
    assert end.decisions == [r["promote"] for r in reference["rounds"]]
    assert end.champion_digest == weights_digest(Path(reference["champion"]))
    now = manifests(out)
    assert {path: now[path] for path in finished} == finished  # trusted, not re-made
    # Known noise, silenced at its source, stays silent in a real run (SFT, training, evaluation).
    printed_lines = (first.output + third.output).splitlines()
    noise = [(i, known) for i, line in enumerate(printed_lines) for known in KNOWN_NOISE if known in line]
    assert noise == [], "\n".join(printed_lines[max(0, noise[0][0] - 5) : noise[0][0] + 25])
    state = mlflow_state(out)
    # The kill during GRPO always leaves the train run open; the kill after a manifest may land
    # between two stages' runs, so only one closed run is certain.
    assert state.campaign_runs == 1 and state.running == 0 and state.ended_by_crash >= 1


@pytest.mark.slow
def test_mlflow_layout(campaign):
    import mlflow
    from mlflow import MlflowClient

    from mmupt import tracking

    out, config, summary, _ = campaign
    mlflow.set_tracking_uri(summary["tracking_uri"])
    client = MlflowClient()
    history = client.get_metric_history(summary["mlflow_run_id"], "eval/world")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
        r["scores"]["world"] for r in summary["rounds"]
    ]
    experiment = client.get_experiment_by_name(config.name)
    runs = client.search_runs([experiment.experiment_id])
    names = {r.info.run_name for r in runs}
    # stage runs are named and tagged by their round, so the runs table tells rounds apart
    assert {"campaign", "round-0", "round-1", "round-2", "round-1/train", "round-0/sft"} <= names
    assert all(
        r.data.tags.get("round") == r.info.run_name.split("/")[0].removeprefix("round-")
        for r in runs
        if "/" in r.info.run_name
    )
    # the training view, with a description; a handful of params plus the whole config as a file
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert tracking.DESCRIPTION_TAG in experiment.tags
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.params["name"] == config.name and len(parent.data.params) <= 25
    assert tracking.CONFIG_ARTIFACT in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert summary["stop_reason"] in parent.data.tags[tracking.DESCRIPTION_TAG]
    round_run = next(r for r in runs if r.info.run_name == "round-1")
    assert (
        round_run.data.params["round"] == "1" and "promoted" in round_run.data.tags[tracking.DESCRIPTION_TAG]
    )
    train_runs = [r for r in runs if r.info.run_name.endswith("/train")]
    assert all("vote/share_mean" in r.data.metrics for r in train_runs)
    assert all(client.get_run(r.info.run_id).inputs.dataset_inputs for r in train_runs)  # prompts logged
    parent_plots = [a.path for a in client.list_artifacts(summary["mlflow_run_id"], "plots")]
    assert parent_plots == ["plots/comparison.png"]
    # the comparison table, as `mmupt compare` prints it, in MLflow and in the Prefect UI
    from stages.compare import compare_campaign, comparison_rows
    from tasks.reporting import artifact_key

    header, rows = comparison_rows(compare_campaign(out))
    table = json.loads(
        Path(client.download_artifacts(parent.info.run_id, tracking.COMPARISON_TABLE)).read_text()
    )
    assert table["columns"] == header and table["data"] == rows
    # every campaign of this module shares the name, so look among all versions of the key
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect_client:
        versions = prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(config, "comparison")]))
        )
    assert versions and all(v.type == "table" for v in versions)
    expected = [dict(zip(header, row, strict=True)) for row in rows]
    assert expected in [json.loads(v.data) for v in versions]
    round_runs = {r.info.run_name: r.info.run_id for r in runs if r.info.run_name.startswith("round-")}
    assert [a.path for a in client.list_artifacts(round_runs["round-1"], "plots")] == [
        "plots/training_curves.png"
    ]
    versions = client.search_model_versions(f"name='{config.name}-model'")
    # the baseline and every round's model, each distinct checkpoint once (a checkpoint registered
    # again, e.g. by a re-run round, adds no version)
    # round models are kept relative to the campaign folder (it can be moved)
    assert all(not Path(r["model_dir"]).is_absolute() for r in summary["rounds"])
    checkpoints = {tracking.checkpoint_hash(out / r["model_dir"]) for r in summary["rounds"]}
    assert len(versions) == len(checkpoints) >= 2
    assert {v.tags[tracking.CONTENT_HASH_TAG] for v in versions} == checkpoints
    assert all("round" in v.tags and "gate" in v.tags for v in versions)
    champion = client.get_model_version_by_alias(f"{config.name}-model", "champion")
    promoted = [r for r in summary["rounds"] if r["promote"]][-1]
    assert champion.tags[tracking.CONTENT_HASH_TAG] == tracking.checkpoint_hash(out / promoted["model_dir"])


@pytest.mark.slow
def test_compare_matches_artifacts(campaign):
    from stages.compare import compare_campaign

    out, _, summary, _ = campaign
    comparison = compare_campaign(out)
    assert comparison.rounds == [0, 1, 2]
    for record in summary["rounds"]:
        assert comparison.scores["world"][record["round"]] == pytest.approx(record["scores"]["world"])
    # the champion after each round: the newest promoted round so far
    promoted = [r["round"] for r in summary["rounds"] if r["promote"]]
    assert comparison.champions == {k: max(p for p in promoted if p <= k) for k in (0, 1, 2)}
    # one definition per signal: compare shows what the gate decided on and MLflow charts
    assert set(comparison.signals) == {1, 2}
    for record in summary["rounds"][1:]:
        assert comparison.signals[record["round"]] == record["signals"]
        assert metrics.VOTE_SHARE in record["signals"]
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(summary["tracking_uri"])
    charted = MlflowClient().get_metric_history(summary["mlflow_run_id"], metrics.VOTE_SHARE)
    assert {m.step: m.value for m in charted} == {
        r: s[metrics.VOTE_SHARE] for r, s in comparison.signals.items()
    }


@pytest.mark.slow
def test_rerun_hits_the_cache(campaign):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import TaskRunSort

    from flows.campaign import campaign_flow

    out, config, summary, _ = campaign
    before = {p: p.stat().st_mtime for p in out.glob("round-*/*/manifest.json")}
    again = campaign_flow(config, out)
    assert again["champion"] == summary["champion"]
    after = {p: p.stat().st_mtime for p in out.glob("round-*/*/manifest.json")}
    assert before == after  # no artifact was rewritten

    import asyncio

    async def train_states() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(limit=200, offset=0, sort=TaskRunSort.EXPECTED_START_TIME_DESC)
            return [r.state.name for r in runs if r.name.startswith("train")]

    states = asyncio.run(train_states())
    assert states.count("Cached") >= 2


@pytest.mark.slow
def test_a_moved_campaign_folder_is_finished_work(campaign, tmp_path):
    """Move a finished campaign's folder: a re-run there re-makes no stage (each manifest carries a
    key without its location; inputs are identified by content) and its rounds' models resolve
    inside the new folder."""
    import shutil

    from flows.campaign import campaign_flow

    out, config, summary, _ = campaign
    moved = tmp_path / "moved" / "campaign"
    shutil.copytree(out, moved, symlinks=True)
    manifests = {p.relative_to(moved): p.stat().st_mtime_ns for p in moved.glob("round-*/*/manifest.json")}
    again = campaign_flow(config, moved)
    assert {
        p.relative_to(moved): p.stat().st_mtime_ns for p in moved.glob("round-*/*/manifest.json")
    } == manifests
    assert [r["scores"] for r in again["rounds"]] == [r["scores"] for r in summary["rounds"]]
    assert [r["model_dir"] for r in again["rounds"]] == [r["model_dir"] for r in summary["rounds"]]
    assert Path(again["champion"]).is_relative_to(moved)


@pytest.mark.slow
def test_stage_progress_reaches_the_prefect_ui(campaign):
    """The stages' own log lines (SFT loss, training steps) are stored with the runs the UI shows."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterName

    async def stage_logs() -> list:
        async with get_client() as client:
            return await client.read_logs(
                LogFilter(name=LogFilterName(any_=["stages.sft", "stages.train.job"])), limit=200
            )

    logs = asyncio.run(stage_logs())
    messages = [entry.message for entry in logs]
    assert any(m.startswith("sft step") for m in messages)
    assert any(m.startswith("step 1 ") for m in messages)  # a training step, from the Ray job's driver
    assert all(entry.flow_run_id is not None for entry in logs)  # attached to the run the UI opens


@pytest.mark.slow
def test_second_campaign_on_same_dir_is_refused(campaign):
    from flows.locking import campaign_lock

    out, config, _, _ = campaign
    with (
        campaign_lock(out, config),
        pytest.raises(MmuptError, match="already running"),
        campaign_lock(out, config),
    ):
        pass


@pytest.mark.slow
def test_next_round_continues_the_campaign(campaign):
    """`mmupt round` with no --round (the nightly deployment): round 3 from the champion, recorded."""
    import mlflow
    from mlflow import MlflowClient

    from flows.campaign import continue_campaign
    from mmupt import tracking
    from mmupt.store import config_hash, read_manifest

    out, config, summary, _ = campaign
    # one local rank for the extra round (Ray-launched rounds are the fixture's); for_round() below
    local = config.model_copy(deep=True)
    local.train.trainer.launcher = "local"
    record = continue_campaign(local, out)
    assert record.round == 3
    after = json.loads((out / "campaign.summary.json").read_text())
    assert [r["round"] for r in after["rounds"]] == [0, 1, 2, 3]
    assert after["stop_reason"] == "round 3 run on its own"
    promoted = [r for r in after["rounds"] if r["promote"]][-1]
    assert Path(after["champion"]) == out / promoted["model_dir"]
    # each round trains with its own seed, so it never repeats the round before it bit for bit
    for k, for_round in ((1, config), (2, config), (3, local)):
        trained_with = read_manifest(out / f"round-{k}" / "train").config_hash
        assert trained_with == config_hash(for_round.round_train(k))
        assert for_round.round_train(k).trainer.seed == config.train.trainer.seed + k - 1
    hashes = {tracking.checkpoint_hash(out / f"round-{k}" / "train" / "model") for k in (1, 2, 3)}
    assert len(hashes) == 3
    # the campaign's MLflow run (the same run, resumed) charts the new round at step 3
    mlflow.set_tracking_uri(after["tracking_uri"])
    assert after["mlflow_run_id"] == summary["mlflow_run_id"]
    steps = MlflowClient().get_metric_history(after["mlflow_run_id"], "gate/promoted")
    assert {m.step for m in steps} == {1, 2, 3}  # the earlier re-run test logged steps 1 and 2 again


def test_a_spent_premise_stops_a_round_before_it_trains(campaign):
    """premise.recheck stop: a later round re-measures its starting model's premise first; when it
    fails, the round does not train, the champion stays, and the campaign refuses a next round."""
    from flows.campaign import continue_campaign
    from mmupt.errors import CampaignStoppedError
    from schemas.premise import HOLDS, ROWS
    from stages.compare import compare_campaign, comparison_rows

    out, config, _, _ = campaign
    before = json.loads((out / "campaign.summary.json").read_text())
    k = max(r["round"] for r in before["rounds"]) + 1
    strict = config.model_copy(deep=True)
    strict.premise.recheck = "stop"
    strict.premise.min_gain = 1.0  # no model passes, whatever the micro model's figures
    record = continue_campaign(strict, out, k)
    assert record.premise_spent and not record.promote and record.scores == {}
    assert record.premise[HOLDS] == 0.0 and record.premise[ROWS] == 8
    assert record.decision.startswith("not trained: the premise of its starting model failed")
    assert (out / f"round-{k}" / "premise").is_dir() and not (out / f"round-{k}" / "train").exists()
    after = json.loads((out / "campaign.summary.json").read_text())
    assert after["champion"] == before["champion"]
    assert f"premise spent before round {k} trained" in after["stop_reason"]
    with pytest.raises(CampaignStoppedError, match="premise spent"):
        continue_campaign(strict, out)
    # the campaign run charts the re-checked premise at the round's step, beside round 0's
    import mlflow
    from mlflow import MlflowClient

    from schemas.premise import GAIN

    mlflow.set_tracking_uri(after["tracking_uri"])
    steps = {m.step for m in MlflowClient().get_metric_history(after["mlflow_run_id"], GAIN)}
    assert {0, k} <= steps
    header, rows = comparison_rows(compare_campaign(out))
    column = header.index(f"round {k}")
    by_metric = {row[0]: row for row in rows}
    assert by_metric["gate"][column] == "not trained (premise)"
    assert by_metric["premise/greedy"][column] != "-" and by_metric["world accuracy"][column] == "-"


def test_incompatible_directory_is_refused(tmp_path):
    from flows.locking import campaign_lock

    (tmp_path / "campaign.json").write_text(json.dumps({"name": "embedded", "manifest_version": 0}))
    with (
        pytest.raises(MmuptError, match="start a new campaign directory"),
        campaign_lock(tmp_path, CampaignConfig()),
    ):
        pass


def test_config_referencing_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "embedded: null\nstart_model: /nonexistent/model\nsources: [{paths: [/nonexistent]}]\nbenchmarks: []\n"
    )
    config = load_config(CampaignConfig, path)
    from flows.campaign import check_inputs

    with pytest.raises(MmuptError, match="/nonexistent/model"):
        check_inputs(config)


def test_mlflow_server_down_is_a_clear_error(monkeypatch, tmp_path):
    from mmupt import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(MmuptError, match=r"http://127.0.0.1:9.*not reachable"):
        tracking.use_campaign(tmp_path, "x")
