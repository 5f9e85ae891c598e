"""The fault soak: kill a real campaign at every point a crash can hit, re-run it, compare with no crash.

    .venv/bin/python benchmarks/fault_soak.py --write docs/FAULTS.md

One uninterrupted run of ``benchmarks/configs/faults.yaml`` is the reference. Then, per kill point,
a fresh campaign is SIGKILLed (with its Prefect server and Ray cluster) at the first moment the
trigger sees, and the same command is run again. Each row says whether the trigger fired, whether
the re-run finished, whether its numbers and champion weights equal the reference's, how many
finished artifacts it re-made, whether any published artifact was unreadable after the kill, and
the MLflow history (one campaign run, no run left RUNNING). The last point kills one Ray training
worker instead: the campaign must fail with a message or recover, never hang.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fault_harness import (  # noqa: E402
    KillPoint,
    checkpoint_in_progress,
    exists,
    manifests,
    mlflow_state,
    outcome,
    printed,
    run_campaign,
    unreadable_artifacts,
)

CONFIG = ROOT / "benchmarks" / "configs" / "faults.yaml"
TITLE = "# Reliability: crash and resume (the fault soak)"

KILL_POINTS = (
    KillPoint("sft", "during the first SFT (after its first step)", printed("stages.sft - sft step 1/")),
    KillPoint("synthesis", "during round 1's synthesis", printed("stages.synthesis.jobs - synthesis:")),
    KillPoint(
        "after-manifest", "right after round 1's mix manifest is written", exists("round-1/mix/manifest.json")
    ),
    KillPoint(
        "ray-startup",
        "while round 1's training starts Ray and its workers",
        printed("stages.train.job - train:"),
    ),
    KillPoint(
        "grpo-after-checkpoint",
        "during round 1's GRPO, after the step-2 checkpoint",
        exists("round-1/train/checkpoints/step-000002/client_state.json"),
    ),
    KillPoint(
        "mid-checkpoint",
        "while DeepSpeed writes a round-1 checkpoint",
        checkpoint_in_progress("round-1/train"),
    ),
    KillPoint("evaluation", "as round 1's evaluation starts", printed("Task run 'train-")),
    KillPoint(
        "round-2-train",
        "during round 2's GRPO",
        exists("round-2/train/checkpoints/step-000001/client_state.json"),
    ),
)
WORKER_KILL = KillPoint(
    "ray-worker",
    "one Ray training worker SIGKILLed after step 1",
    printed("stages.train.job - step 1 "),
    "RayTrainWorker",
)


@dataclass
class Row:
    point: KillPoint
    fired: bool
    killed_rc: int | None
    unreadable_after_kill: int
    resumed_rc: int | None
    resume_s: float
    equal_numbers: bool
    equal_weights: bool
    remade: int
    campaign_runs: int
    running: int
    closed: int
    note: str = ""


def soak(out: Path, points: tuple[KillPoint, ...], config: Path = CONFIG) -> tuple[float, list[Row]]:
    shutil.rmtree(out, ignore_errors=True)
    reference = run_campaign(config, out / "reference" / "campaign", out / "reference" / "prefect")
    if reference.returncode != 0:
        raise SystemExit(
            f"the reference run failed (exit {reference.returncode}):\n{reference.output[-3000:]}"
        )
    expected = outcome(out / "reference" / "campaign")
    rows = [run_point(out, point, config, expected) for point in points]
    return reference.seconds, rows


def run_point(out: Path, point: KillPoint, config: Path, expected) -> Row:
    campaign, home = out / point.name / "campaign", out / point.name / "prefect"
    killed = run_campaign(config, campaign, home, kill=point)
    print(
        f"[{point.name}] fired={killed.fired} exit={killed.returncode} after {killed.seconds:.0f}s",
        flush=True,
    )
    before = manifests(campaign)
    unreadable = unreadable_artifacts(campaign)
    resumed = run_campaign(config, campaign, home)
    print(f"[{point.name}] re-run exit={resumed.returncode} in {resumed.seconds:.0f}s", flush=True)
    after = manifests(campaign)
    remade = sum(1 for path, mtime in before.items() if after.get(path) != mtime)
    got = outcome(campaign) if resumed.returncode == 0 else None
    state = mlflow_state(campaign)
    note = ""
    if point.only is not None:  # what the user saw when the worker died: the one-line error, if any
        lines = [line for line in killed.output.splitlines() if line.strip()]
        died = [line for line in lines if "process died" in line]
        said = [line for line in lines if "error:" in line] or lines[-1:] or [""]
        if killed.returncode == 0 and died:  # the campaign's train task retried by itself
            note = f"first run finished by itself (exit 0): its train task retried after: {died[0].strip()[:300]}"
        else:
            note = f"first run exit {killed.returncode}: {said[-1].strip()[:300]}"
    return Row(
        point=point,
        fired=killed.fired,
        killed_rc=killed.returncode,
        unreadable_after_kill=len(unreadable),
        resumed_rc=resumed.returncode,
        resume_s=resumed.seconds,
        equal_numbers=got is not None
        and (got.scores, got.decisions) == (expected.scores, expected.decisions),
        equal_weights=got is not None and got.champion_digest == expected.champion_digest,
        remade=remade,
        campaign_runs=state.campaign_runs,
        running=state.running,
        closed=state.ended_by_crash,
        note=note,
    )


def report(reference_s: float, rows: list[Row]) -> str:
    ok = [r for r in rows if r.resumed_rc == 0 and r.equal_numbers and r.equal_weights and r.running == 0]
    lines = [
        TITLE,
        "",
        f"Generated by `.venv/bin/python benchmarks/fault_soak.py --write docs/FAULTS.md` "
        f"({time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"config `benchmarks/configs/faults.yaml`, uninterrupted run {reference_s:.0f} s). Each campaign is the "
        "real `mmupt campaign` command; a kill is SIGKILL to it and every process it started (Prefect "
        "server, Ray cluster), at the first moment the trigger sees; the re-run is the same command.",
        "",
        f"**Kills {len(rows)}, fired {sum(r.fired for r in rows)}, re-runs finished "
        f"{sum(r.resumed_rc == 0 for r in rows)}, equal to the uninterrupted run (numbers, gate decisions and "
        f"champion weights) {len(ok)}, unreadable artifacts after a kill "
        f"{sum(r.unreadable_after_kill for r in rows)}, MLflow runs left RUNNING {sum(r.running for r in rows)}.**",
        "",
        "| kill point | moment | fired | re-run | s | numbers equal | weights equal | finished stages re-made "
        "| campaign runs | crashed runs closed |",
        "|---|---|---|---|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.point.name} | {r.point.when} | {'yes' if r.fired else 'no'} | "
            f"{'ok' if r.resumed_rc == 0 else f'exit {r.resumed_rc}'} | {r.resume_s:.0f} | "
            f"{'yes' if r.equal_numbers else 'NO'} | {'yes' if r.equal_weights else 'NO'} | {r.remade} | "
            f"{r.campaign_runs} | {r.closed} |"
        )
    notes = [f"- {r.point.name}: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "faults")
    parser.add_argument("--points", default="all", help="comma-separated kill point names, or all")
    parser.add_argument("--write", type=Path, help="write the report to this Markdown file")
    args = parser.parse_args()
    every = (*KILL_POINTS, WORKER_KILL)
    chosen = every if args.points == "all" else tuple(p for p in every if p.name in args.points.split(","))
    reference_s, rows = soak(args.out, chosen)
    section = report(reference_s, rows)
    print(section)
    if args.write:
        args.write.write_text(section, encoding="utf-8")


if __name__ == "__main__":
    main()
