"""``mmupt train`` as a user runs it, for the benchmarks that time whole training jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = ROOT / "configs" / "train_tiny.yaml"


def train_command(samples: Path, model: Path, out: Path, sets: dict[str, str]) -> list[str]:
    """The CLI call: the tiny training profile, with ``sets`` as ``--set key=value`` overrides."""
    command = [str(Path(sys.executable).parent / "mmupt"), "train", "--samples", str(samples)]
    command += ["--model", str(model), "--config", str(TRAIN_CONFIG), "--out", str(out)]
    for key, value in sets.items():
        command += ["--set", f"{key}={value}"]
    return command


def read_step_metrics(out: Path) -> list[dict]:
    """The job's per-step metrics (``metrics.jsonl``), in step order."""
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
