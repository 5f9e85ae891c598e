"""The deploy/ scripts start real Prefect and MLflow servers on 127.0.0.1; a campaign runs against them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a deploy/ start script as a user would; it prints ``NAME=url`` last."""
    return subprocess.run(
        ["bash", script, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )


@pytest.fixture
def servers(tmp_path):
    env = {
        **os.environ,
        "MMUPT_VENV": str(Path(sys.executable).parent.parent),
        "MMUPT_SERVER_DIR": str(tmp_path / "servers"),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
    }
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    try:
        prefect = _start("deploy/start_prefect.sh", env)
        mlflow = _start("deploy/start_mlflow.sh", env, str(tmp_path / "mlflow-store"))
        urls = {
            "PREFECT_API_URL": prefect.stdout.strip().splitlines()[-1].split("=", 1)[1],
            "MLFLOW_TRACKING_URI": mlflow.stdout.strip().splitlines()[-1].split("=", 1)[1],
        }
        for url in urls.values():
            assert url.startswith("http://127.0.0.1:")
        yield env, urls
    finally:
        subprocess.run(["bash", "deploy/stop_servers.sh"], cwd=ROOT, env=env, timeout=120)


@pytest.mark.slow
def test_campaign_against_local_servers(servers, tmp_path):
    env, urls = servers
    config = yaml.safe_load((ROOT / "configs" / "test_campaign.yaml").read_text())
    config.update({"name": "served", "rounds": 1, "synthesize": None})
    config["train"]["data"]["max_steps"] = 1
    # what is tested is the servers; Ray-launched training is tested by test_campaign and test_train
    config["train"]["trainer"]["launcher"] = "local"
    config_path = tmp_path / "served.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "campaign"
    run = subprocess.run(
        [sys.executable, "-m", "flows.cli", "campaign", "--config", str(config_path), "--out", str(out)],
        cwd=ROOT,
        env={**env, **urls},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((out / "campaign.summary.json").read_text())
    assert summary["tracking_uri"] == urls["MLFLOW_TRACKING_URI"]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=urls["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("served")
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    assert {"campaign", "round-0", "round-1", "round-1/train"} <= names

    import urllib.request

    request = urllib.request.Request(
        f"{urls['PREFECT_API_URL']}/flow_runs/filter",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    flow_runs = json.loads(urllib.request.urlopen(request, timeout=30).read())
    states = {(r["name"], r["state_type"]) for r in flow_runs}
    assert (
        any(state == "COMPLETED" for _, state in states) and len(flow_runs) >= 2
    )  # campaign + round subflow


def test_prefect_server_down_is_a_clear_error(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo", "--out", str(tmp_path / "x")],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "http://127.0.0.1:9/api" in run.stderr and "not reachable" in run.stderr
    assert "Traceback" not in run.stderr
