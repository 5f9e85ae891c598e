"""The command line as a user meets it: usage errors and refused outputs are one line, exit 2.

Runs ``flows.cli.main`` in-process (the console entry point) with a patched ``sys.argv``.
"""

from __future__ import annotations

import json
import sys

import pytest

from flows.cli import main


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["mmupt", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["trian"], "No such command 'trian'"),
        (["campaign", "--config", "configs/demo.yaml"], "Missing option '--out'"),
        (["campaign", "--config", "configs/demo.yaml", "--out", "x", "--rounds", "abc"], "'--rounds'"),
        (["vote", "--rollouts", "r.jsonl", "--out", "o", "--min-vote-ratio", "abc"], "'--min-vote-ratio'"),
        (["world", "--no-such-flag"], "No such option"),
        (
            ["campaign", "--config", "configs/demo.yaml", "--out", "x", "--set", "rounds"],
            "expected KEY=VALUE",
        ),
        (
            ["campaign", "--config", "configs/demo.yaml", "--out", "x", "--set", "train.data.max_step=3"],
            "max_step",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(monkeypatch, capsys, args, says):
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_version(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mmupt", "--version"])
    main()  # returns: exit status 0
    assert capsys.readouterr().out.startswith("mmupt ")


def _rollouts(path):
    rows = [{"prompt_id": "p", "response_index": i, "response": r"\boxed{2}"} for i in range(3)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_vote_never_replaces_a_folder_of_user_files(monkeypatch, capsys, tmp_path):
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("precious", encoding="utf-8")
    code, err = run_cli(monkeypatch, capsys, "vote", "--rollouts", str(rollouts), "--out", str(users))
    assert code == 2 and "not empty (notes.txt)" in err and len(err.strip().splitlines()) == 1
    assert (users / "notes.txt").read_text(encoding="utf-8") == "precious"
    # an output that contains the input is refused too
    code, err = run_cli(monkeypatch, capsys, "vote", "--rollouts", str(rollouts), "--out", str(tmp_path))
    assert code == 2 and "overlaps the input" in err and rollouts.is_file()


def test_vote_replaces_its_own_earlier_artifact(monkeypatch, capsys, tmp_path):
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    out = tmp_path / "vote"
    for _ in range(2):
        monkeypatch.setattr(sys, "argv", ["mmupt", "vote", "--rollouts", str(rollouts), "--out", str(out)])
        main()
    assert (out / "manifest.json").is_file()
    # ... but not an artifact of another stage
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"kind": "ingest"}), encoding="utf-8")
    code, err = run_cli(monkeypatch, capsys, "vote", "--rollouts", str(rollouts), "--out", str(other))
    assert code == 2 and "holds a ingest artifact" in err


def test_ingest_into_its_own_dataset_is_refused(monkeypatch, capsys, tmp_path):
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "data.jsonl").write_text(
        json.dumps({"question": "q", "image": "a.png"}) + "\n", encoding="utf-8"
    )
    code, err = run_cli(monkeypatch, capsys, "ingest", str(dataset), "--out", str(dataset))
    assert code == 2 and "Traceback" not in err
    assert (dataset / "data.jsonl").is_file()


def test_score_never_moves_a_users_file(monkeypatch, capsys, tmp_path):
    precious = tmp_path / "scores.txt"
    precious.write_text("mine", encoding="utf-8")
    responses = tmp_path / "responses.jsonl"
    responses.write_text(json.dumps({"id": "1", "response": "4"}) + "\n", encoding="utf-8")
    code, err = run_cli(
        monkeypatch,
        capsys,
        *("score", "--benchmark", "world", "--data", str(tmp_path / "nowhere")),
        *("--responses", str(responses), "--out", str(precious)),
    )
    assert code == 2 and "is a file" in err
    assert precious.read_text(encoding="utf-8") == "mine"


def test_undecodable_and_deeply_nested_inputs_are_one_line(monkeypatch, capsys, tmp_path):
    rows = "".join(json.dumps({"prompt_id": "p", "response": r"\boxed{2}"}) + "\n" for _ in range(2))
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(rows.encode("utf-16"))
    code, err = run_cli(monkeypatch, capsys, "vote", "--rollouts", str(utf16), "--out", str(tmp_path / "a"))
    assert (
        code == 2 and "not UTF-8 text (it looks like UTF-16): byte offset 0" in err and "Traceback" not in err
    )

    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, err = run_cli(monkeypatch, capsys, "vote", "--rollouts", str(deep), "--out", str(tmp_path / "b"))
    assert code == 2 and "nested too deeply" in err and len(err.strip().splitlines()) == 1

    config = tmp_path / "vote.yaml"
    config.write_bytes("min_vote_ratio: 0.5\n".encode("utf-16"))
    rollouts = _rollouts(tmp_path / "rollouts.jsonl")
    code, err = run_cli(
        monkeypatch,
        capsys,
        "vote",
        "--rollouts",
        str(rollouts),
        "--out",
        str(tmp_path / "c"),
        "--config",
        str(config),
    )
    assert code == 2 and "vote.yaml: not UTF-8 text" in err


def test_campaign_input_errors_come_before_any_server(monkeypatch, capsys, tmp_path):
    import fcntl

    # a Prefect server that is down: had anything contacted it, the error would name it
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    config = tmp_path / "c.yaml"
    config.write_text(
        "embedded: null\nstart_model: /nonexistent/model\nsources: [{paths: [/nonexistent]}]\nbenchmarks: []\n"
    )
    code, err = run_cli(
        monkeypatch, capsys, "campaign", "--config", str(config), "--out", str(tmp_path / "c")
    )
    assert code == 2 and "/nonexistent/model" in err and "Prefect" not in err

    busy = tmp_path / "busy"
    busy.mkdir()
    with (busy / ".campaign.lock").open("a+") as handle:
        handle.write("pid 4242")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, err = run_cli(monkeypatch, capsys, "demo", "--out", str(busy))
    assert code == 2 and "already running there (pid 4242)" in err and len(err.strip().splitlines()) == 1


FAILING_FLOW = """
from flows.runtime import configure, quiet_user_error_tracebacks
configure()
from prefect import flow, task
from mmupt.errors import ConfigError
quiet_user_error_tracebacks()

@task
def stage():
    raise ConfigError("runs/x/round-1/train: holds a training run already: pass --resume")

@flow
def campaign():
    stage()

try:
    campaign()
except ConfigError:
    pass
"""


@pytest.mark.slow
def test_a_user_error_inside_a_flow_is_logged_without_a_traceback(tmp_path):
    """Prefect logs a failed task and flow with the traceback; for an MmuptError the message is enough."""
    import os
    import subprocess
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # a temporary local server
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run(
        [sys.executable, "-c", FAILING_FLOW],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    printed = done.stdout + done.stderr
    assert "holds a training run already" in printed and "Finished in state Failed" in printed
    assert "Traceback" not in printed


def test_other_errors_keep_their_traceback():
    import logging

    from flows.runtime import PREFECT_RUN_LOGGERS, quiet_user_error_tracebacks
    from mmupt.errors import ConfigError

    quiet_user_error_tracebacks()
    logger = logging.getLogger(PREFECT_RUN_LOGGERS[0])
    for error, kept in ((ConfigError("bad key"), False), (ValueError("a bug"), True)):
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "failed", (), (type(error), error, None)
        )
        assert logger.filter(record) and (record.exc_info is not None) == kept
