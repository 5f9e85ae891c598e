"""Retry policy shared by stage tasks: retry transient failures, never validation errors."""

from __future__ import annotations

from typing import Any

from mmupt.errors import MmuptError, TransientError


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: a user error (bad config or data) fails at once."""
    try:
        state.result()
    except TransientError:  # a lost worker: the retried train task resumes from its checkpoint
        return True
    except MmuptError:
        return False
    except Exception:  # noqa: BLE001 - any other failure (I/O, OOM-kill, worker loss) may pass on retry
        return True
    return True
