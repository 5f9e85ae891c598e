"""Kill a real ``mmupt campaign`` at a chosen moment, re-run it, and check what a crash must not break.

Used by ``tests/test_faults.py`` (the fast part, in CI) and ``benchmarks/fault_soak.py`` (every kill
point, a table in docs/FAULTS.md). A campaign runs as the user runs it: the ``mmupt`` command in
its own session, with its own temporary Prefect server and Ray cluster. A kill is SIGKILL to the
command and every process it started (a node dying), at the first moment a trigger sees: a line
the campaign prints, or a file it writes. The re-run is the same command; the checks compare it
with an uninterrupted run of the same config.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq

MMUPT = str(Path(sys.executable).with_name("mmupt"))
POLL_S = 0.01


@dataclass
class Watch:
    """What a trigger sees of a running campaign: its output lines so far and its directory."""

    out: Path
    lines: list[str] = field(default_factory=list)

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@dataclass(frozen=True)
class KillPoint:
    name: str
    when: str  # for the report: the moment, in words
    trigger: Callable[[Watch], bool]
    # what to kill: the whole campaign (None), or only the processes whose command line has this text
    only: str | None = None


@dataclass
class RunResult:
    returncode: int | None
    seconds: float
    output: str
    fired: bool = False


def campaign_env(home: Path) -> dict[str, str]:
    """The campaign's environment: its own Prefect home (results, temporary server database)."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PREFECT_HOME"] = str(home)
    # the thread count is inherited, never set here: torch's reductions, hence the weights, depend on
    # it, and the runs compared (an in-process reference in CI) must use the same
    home.mkdir(parents=True, exist_ok=True)
    return env


def run_campaign(
    config: Path, out: Path, home: Path, kill: KillPoint | None = None, limit_s: float = 900
) -> RunResult:
    """Run ``mmupt campaign`` to its end, or until ``kill`` fires (then kill it as a crash would)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [MMUPT, "campaign", "--config", str(config), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=campaign_env(home),
        start_new_session=True,
    )
    watch = Watch(out)
    reader = threading.Thread(target=_read_lines, args=(proc, watch.lines), daemon=True)
    reader.start()
    fired = False
    while proc.poll() is None:
        if time.perf_counter() - started > limit_s:
            kill_tree(proc.pid)
            proc.wait()
            reader.join(5)
            return RunResult(None, time.perf_counter() - started, "\n".join(watch.lines), fired)
        if kill is not None and not fired and kill.trigger(watch):
            fired = True
            if kill.only is None:
                kill_tree(proc.pid)
            else:
                kill_matching(proc.pid, kill.only)
        time.sleep(POLL_S)
    reader.join(5)
    kill_tree(proc.pid)  # whatever it left behind (a crashed run's Ray cluster)
    return RunResult(proc.returncode, time.perf_counter() - started, "\n".join(watch.lines), fired)


def _read_lines(proc: subprocess.Popen, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process it started, children first found, then the session."""
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    # not the root: it is the caller's child, and reaping it here would hide its exit status (-9)
    psutil.wait_procs(family[1:], timeout=10)


def kill_matching(pid: int, text: str) -> None:
    """SIGKILL the descendants of ``pid`` whose command line contains ``text`` (one Ray worker)."""
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if text in " ".join(proc.cmdline()):
                proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


# ---------------------------------------------------------------------------- triggers


def printed(text: str) -> Callable[[Watch], bool]:
    return lambda watch: watch.printed(text)


def exists(relative: str) -> Callable[[Watch], bool]:
    return lambda watch: (watch.out / relative).exists()


def checkpoint_in_progress(train_dir: str) -> Callable[[Watch], bool]:
    """A checkpoint folder whose completion marker is not written yet (DeepSpeed is saving)."""

    def trigger(watch: Watch) -> bool:
        root = watch.out / train_dir / "checkpoints"
        return root.is_dir() and any(
            step.is_dir() and any(step.iterdir()) and not (step / "client_state.json").exists()
            for step in root.glob("step-*")
        )

    return trigger


# ---------------------------------------------------------------------------- what a crash must not break


@dataclass
class Outcome:
    """A campaign's end state, compared across runs."""

    scores: list[dict[str, float]]
    decisions: list[bool]
    champion_digest: str
    stop_reason: str


def outcome(out: Path) -> Outcome:
    summary = json.loads((out / "campaign.summary.json").read_text(encoding="utf-8"))
    return Outcome(
        scores=[r["scores"] for r in summary["rounds"]],
        decisions=[bool(r["promote"]) for r in summary["rounds"]],
        champion_digest=weights_digest(Path(summary["champion"])),
        stop_reason=summary["stop_reason"],
    )


def weights_digest(model_dir: Path) -> str:
    """The model's tensors, by name and exact bytes (file names, metadata and timestamps aside)."""
    from safetensors.numpy import load_file

    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        tensors = load_file(str(path))
        for name in sorted(tensors):
            digest.update(name.encode())
            digest.update(tensors[name].tobytes())
    return digest.hexdigest()


def manifests(out: Path) -> dict[Path, float]:
    """Every published artifact under ``out`` and its manifest's modification time."""
    return {p.parent: p.stat().st_mtime for p in out.glob("**/manifest.json") if "/." not in str(p)}


def unreadable_artifacts(out: Path) -> list[str]:
    """Artifacts whose manifest lists a table that is missing, unreadable or has another row count."""
    bad = []
    for artifact in manifests(out):
        data = json.loads((artifact / "manifest.json").read_text(encoding="utf-8"))
        for name, table in data.get("tables", {}).items():
            path = artifact / table["file"]
            try:
                rows = pq.read_metadata(path).num_rows
            except Exception as err:  # noqa: BLE001 - any failure to read is the finding
                bad.append(f"{artifact.relative_to(out)}:{name}: {err}")
                continue
            if rows != int(table["rows"]):
                bad.append(f"{artifact.relative_to(out)}:{name}: {rows} rows, manifest says {table['rows']}")
    return bad


@dataclass
class MlflowState:
    campaign_runs: int
    running: int
    ended_by_crash: int  # runs the re-run closed as FAILED/KILLED


def mlflow_state(out: Path) -> MlflowState:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = [
        r
        for e in client.search_experiments()
        for r in client.search_runs([e.experiment_id], max_results=5000)
    ]
    return MlflowState(
        campaign_runs=sum(r.info.run_name == "campaign" for r in runs),
        running=sum(r.info.status == "RUNNING" for r in runs),
        ended_by_crash=sum(r.info.status in {"FAILED", "KILLED"} for r in runs),
    )
