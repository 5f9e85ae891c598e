"""One nested MLflow run per stage task: config as params, manifest stats as metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from mmupt import tracking
from mmupt.store import Manifest, flatten_stats


def prefect_ids() -> dict[str, str]:
    """Tags that link an MLflow run back to the Prefect flow and task run."""
    try:
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:  # pragma: no cover - prefect is a dependency
        return {}
    tags = {}
    if (flow_ctx := FlowRunContext.get()) and flow_ctx.flow_run:
        tags["prefect.flow_run_id"] = str(flow_ctx.flow_run.id)
    if (task_ctx := TaskRunContext.get()) and task_ctx.task_run:
        tags["prefect.task_run_id"] = str(task_ctx.task_run.id)
    return tags


@contextlib.contextmanager
def stage_run(stage: str, parent_run_id: str | None, config: BaseModel | None, **tags: str) -> Iterator[Any]:
    """A stage's MLflow run, nested under its round (a no-op when no parent is tracked)."""
    if parent_run_id is None:
        yield None
        return
    params = config.flat(stage) if config is not None and hasattr(config, "flat") else {}
    with tracking.run(
        stage, params=params, tags={**prefect_ids(), "stage": stage, **tags}, parent_run_id=parent_run_id
    ) as active:
        yield active


def log_manifest(manifest: Manifest, prefix: str) -> None:
    tracking.log_metrics({f"{prefix}/{k}": v for k, v in flatten_stats(manifest.stats).items()})
