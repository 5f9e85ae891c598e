"""Checks that run before any server, Ray cluster or Prefect flow starts: one line, exit 2.

Kept free of Prefect and MLflow imports, so a wrong path or a busy campaign directory is reported
at once instead of after a temporary Prefect server has spent tens of seconds starting.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from flows.locking import LOCK_FILE, lock_or_refuse
from mmupt.errors import MmuptError
from schemas.campaign import CampaignConfig


def check_inputs(config: CampaignConfig) -> None:
    """Fail before any work when the config names files that do not exist."""
    from mmupt.modeling.loader import check_model_dir

    if config.start_model is not None:
        check_model_dir(config.start_model)
    for source in config.sources:
        for path in source.paths:
            if not Path(path).exists():
                raise MmuptError(f"sources: {path} does not exist (fix the path in the campaign config)")
    for spec in config.benchmarks:
        if spec.data is not None and not Path(spec.data).exists():
            raise MmuptError(
                f"benchmarks: {spec.name} data {spec.data} does not exist (fix `data` in the config)"
            )
    if config.premise is not None and config.premise.data is not None and not config.premise.data.exists():
        raise MmuptError(
            f"premise.data: {config.premise.data} does not exist (point it at a labelled dev set, or set premise: null)"
        )


def check_not_busy(out_dir: Path) -> None:
    """Refuse a campaign directory whose lock another process holds (probed, then released)."""
    lock = Path(out_dir) / LOCK_FILE
    if not lock.is_file():
        return
    with lock.open("a+") as handle:
        lock_or_refuse(handle, out_dir)
        fcntl.flock(handle, fcntl.LOCK_UN)


def preflight(config: CampaignConfig, out_dir: Path) -> None:
    """Everything a campaign or round can check before starting anything heavy."""
    check_inputs(config)
    check_not_busy(out_dir)
