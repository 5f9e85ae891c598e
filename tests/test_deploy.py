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


def _api(url: str, path: str, body: dict | None = None) -> object:
    import urllib.request

    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    return json.loads(urllib.request.urlopen(request, timeout=30).read())


def _prefect(env: dict[str, str], *args: str) -> str:
    run = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), *args],
        cwd=ROOT,  # Prefect records this directory; the process worker runs the flows there
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout


def _wait_terminal(api: str, ids: list[str], limit_s: float = 900) -> dict[str, dict]:
    """Poll until every flow run in ``ids`` is in a terminal state; also record every state seen."""
    import time

    seen: dict[str, set[str]] = {i: set() for i in ids}
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        runs = {r["id"]: r for r in _api(api, "/flow_runs/filter", {"flow_runs": {"id": {"any_": ids}}})}
        for run_id, run in runs.items():
            seen[run_id].add(run["state_name"])
        if all(runs[i]["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for i in ids):
            return {i: {**runs[i], "seen": seen[i]} for i in ids}
        time.sleep(1)
    raise AssertionError(f"flow runs not finished after {limit_s}s: {seen}")


@pytest.mark.slow
def test_deployments_on_a_process_worker_continue_one_campaign(servers, tmp_path):
    """The deploy/ scripts' servers on 127.0.0.1, used as deploy/prefect.yaml's header says: deploy both deployments, start a process worker, run the
    campaign, then trigger the next-round deployment twice at once. The second trigger waits for the
    first (one run at a time); the campaign summary, the MLflow campaign run, the champion alias and
    `mmupt compare` then agree on rounds 0..3, with one registered version per distinct checkpoint."""
    env, urls = servers
    env = {**env, **urls, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    config = yaml.safe_load((ROOT / "configs" / "test_campaign.yaml").read_text())
    config.update({"name": "scheduled", "rounds": 1, "synthesize": None})
    config["train"]["data"]["max_steps"] = 1
    config["train"]["trainer"]["launcher"] = "local"  # Ray training is tested by test_campaign/test_train
    config_path = tmp_path / "scheduled.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / "campaign"

    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    pool = "mmupt-test-pool"
    for deployment in spec["deployments"]:
        deployment["work_pool"]["name"] = pool
        deployment["parameters"].update({"config_path": str(config_path), "out_dir": str(out)})
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump(spec))
    _prefect(env, "work-pool", "create", pool, "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file))

    worker = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", pool],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        api = urls["PREFECT_API_URL"]

        def trigger(name: str) -> str:
            printed = _prefect(env, "deployment", "run", name)
            return next(line.split()[-1] for line in printed.splitlines() if "UUID" in line)

        campaign = _wait_terminal(api, [trigger("mmupt-campaign-from-file/campaign")])
        assert [r["state_type"] for r in campaign.values()] == ["COMPLETED"], (
            tmp_path / "worker.log"
        ).read_text()[-3000:]
        first, second = trigger("mmupt-round-from-file/round"), trigger("mmupt-round-from-file/round")
        rounds = _wait_terminal(api, [first, second])
    finally:
        worker.terminate()  # a worker drains gracefully; the test does not need to wait for that
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=20)
    log_tail = (tmp_path / "worker.log").read_text()[-3000:]
    assert all(r["state_type"] == "COMPLETED" for r in rounds.values()), log_tail
    # one at a time: the later of the two waited for the other instead of failing on the lock
    runs = sorted(rounds.values(), key=lambda r: r["start_time"])
    assert runs[1]["start_time"] >= runs[0]["end_time"]

    summary = json.loads((out / "campaign.summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1, 2, 3]
    assert summary["tracking_uri"] == urls["MLFLOW_TRACKING_URI"]  # the worker's server, not a local store
    from mlflow import MlflowClient

    from mmupt import tracking
    from stages.compare import compare_campaign

    client = MlflowClient(tracking_uri=urls["MLFLOW_TRACKING_URI"])
    history = client.get_metric_history(summary["mlflow_run_id"], "eval/world")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    experiment = client.get_experiment_by_name("scheduled")
    runs = client.search_runs([experiment.experiment_id])
    assert sum(r.info.run_name == "campaign" for r in runs) == 1
    assert {"round-0", "round-1", "round-3", "round-1/train", "round-3/evaluate-world"} <= {
        r.info.run_name for r in runs
    }
    champion = client.get_model_version_by_alias("scheduled-model", "champion")
    assert champion.tags[tracking.CONTENT_HASH_TAG] == tracking.checkpoint_hash(summary["champion"])
    versions = client.search_model_versions("name='scheduled-model'")
    checkpoints = {tracking.checkpoint_hash(out / r["model_dir"]) for r in summary["rounds"]}
    assert len(versions) == len(checkpoints)
    comparison = compare_campaign(out)
    assert sorted(comparison.scores["world"]) == [0, 1, 2, 3]
