"""Model registry modes against a real MLflow sqlite store: what each one copies and registers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmupt import tracking


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.use_campaign(tmp_path, "registry-test")
    checkpoint = tmp_path / "round-1" / "model"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    return checkpoint


@pytest.mark.parametrize("mode", ["copy", "reference", "off"])
def test_register_model_modes(store, mode):
    import mlflow
    from mlflow import MlflowClient

    with tracking.run("round-1") as active:
        version = tracking.register_model(store, "m", alias="champion", mode=mode)
    client = MlflowClient()
    run = client.get_run(active.info.run_id)
    assert run.data.tags["model_dir"] == str(store.resolve())
    copied = [a.path for a in client.list_artifacts(active.info.run_id, "model")]
    if mode == "off":
        assert version is None and copied == []
        assert client.search_registered_models(filter_string="name = 'm'") == []
        return
    entry = client.get_model_version_by_alias("m", "champion")
    assert str(entry.version) == version and entry.run_id == active.info.run_id
    if mode == "copy":
        assert copied == ["model/config.json"] and entry.source.endswith("/model")
        assert Path(mlflow.artifacts.download_artifacts(entry.source)).joinpath("config.json").is_file()
    else:  # reference: nothing copied, the version points at the checkpoint on disk
        assert copied == [] and entry.source == str(store.resolve())


def test_campaign_config_rejects_an_unknown_registry_mode():
    from pydantic import ValidationError

    from schemas.campaign import CampaignConfig

    with pytest.raises(ValidationError, match="model_registry"):
        CampaignConfig.model_validate({"name": "x", "embedded": {}, "model_registry": "upload"})


def test_round_report_links_to_the_run_page_mlflow_3_serves(store):
    from tasks.reporting import mlflow_run_link

    with tracking.run("round-1") as active:
        run_id, experiment = active.info.run_id, active.info.experiment_id
    link = mlflow_run_link("http://127.0.0.1:5000/", run_id)
    assert (
        link
        == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning"
    )
    assert mlflow_run_link("sqlite:///x.db", run_id) == f"run id {run_id}"


def test_reruns_reuse_runs_close_stale_ones_and_register_a_checkpoint_once(store, tmp_path):
    from mlflow import MlflowClient

    campaign_tags = {tracking.ROLE_TAG: "campaign", tracking.CAMPAIGN_DIR_TAG: str(tmp_path.resolve())}
    with (
        tracking.run("campaign", params={"rounds": 2}, reuse=campaign_tags) as first,
        tracking.run("round-1", parent_run_id=first.info.run_id) as stage,
    ):
        pass
    client = MlflowClient()
    assert client.get_run(stage.info.run_id).data.tags[tracking.CAMPAIGN_DIR_TAG] == str(tmp_path.resolve())

    # a killed campaign leaves a run RUNNING; the next one closes it and continues the same campaign run
    stale = client.create_run(
        first.info.experiment_id, tags={tracking.CAMPAIGN_DIR_TAG: str(tmp_path.resolve())}
    )
    assert tracking.close_interrupted_runs(tmp_path) == 1
    assert client.get_run(stale.info.run_id).info.status == "KILLED"
    with tracking.run("campaign", params={"rounds": 3}, reuse=campaign_tags) as second:
        pass
    assert second.info.run_id == first.info.run_id
    assert client.get_run(first.info.run_id).data.params["rounds"] == "2"  # params are not rewritten

    with tracking.run("round-1") as active:
        v1 = tracking.register_model(store, "m", alias="champion", mode="reference", tags={"round": "1"})
        v2 = tracking.register_model(store, "m", mode="reference", tags={"gate": "promoted"})
    assert v1 == v2 and len(client.search_model_versions("name = 'm'")) == 1
    version = client.get_model_version("m", v1)
    assert version.tags["round"] == "1" and version.tags["gate"] == "promoted"
    assert active.info.run_id
