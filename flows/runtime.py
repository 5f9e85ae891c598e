"""Process-level defaults the flows need before Prefect or MLflow is imported.

The embedded defaults must work with no server at all: Prefect then starts a temporary local API,
which can take longer than its 20 s default to come up on a loaded 2-core machine.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from mmupt.deepspeed_env import use_op_cache

STAGE_LOGGERS = ("mmupt", "stages", "tasks", "flows")

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # With a tracking server, MLflow prints two links at the end of every run (a dozen stage runs a
    # round); the campaign prints where to look once, at its end.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "HF_HUB_OFFLINE": "1",
    # a bar per checkpoint load/save, ~10 per round: noise between the progress lines (set 0 to see them)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # The stages log their progress (SFT loss, synthesis batches, training steps) through these
    # packages' loggers; Prefect attaches its API handler to them, so the lines reach the run's
    # page in the Prefect UI as well as the console. Outside a run (a single-stage CLI command)
    # there is no run to send them to: that is expected, not worth a warning per line.
    "PREFECT_LOGGING_EXTRA_LOGGERS": ",".join(STAGE_LOGGERS),
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def configure() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    for name in STAGE_LOGGERS:  # progress lines are INFO; Python's default passes WARNING and up only
        logging.getLogger(name).setLevel(logging.INFO)
    os.environ.setdefault("PREFECT_HOME", str(Path.home() / ".cache" / "mmupt" / "prefect"))
    use_op_cache()
    # Prefect creates only the last path component of its home: a missing parent makes its
    # temporary server fail to open its database.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


def check_prefect_server() -> None:
    """With ``PREFECT_API_URL`` set, fail fast (with the URL) when that server is down."""
    from mmupt.health import require_reachable

    url = os.environ.get("PREFECT_API_URL")
    if url:
        require_reachable(
            url,
            "Prefect server",
            "start it with deploy/start_prefect.sh or unset PREFECT_API_URL to run with a temporary local server",
        )


def configure_console_logging() -> None:
    """Show the stages' progress lines (INFO) on stderr, for every command, flow or not.

    Python's default shows WARNING and up only, so a 3-minute SFT printed nothing. The handler sits
    on the stage loggers themselves (no propagation), so inside a Prefect flow each line is printed
    once while Prefect's API handler, attached to the same loggers, sends it to the UI.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s", "%H:%M:%S")
    )
    for name in STAGE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "mmupt_console", False)]
        handler.mmupt_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
"""The loggers Prefect reports a failed flow or task run on, with the exception's traceback."""


class _UserErrorsWithoutTraceback(logging.Filter):
    """Drop the traceback from a run's failure record when the error is the user's (``MmuptError``):
    its message already says what, where and what to do; the traceback only buries it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from mmupt.errors import MmuptError

        if record.exc_info and isinstance(record.exc_info[1], MmuptError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_error_tracebacks() -> None:
    """Prefect logs every failed run with its traceback; for user errors the CLI's one line says it all."""
    for name in PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _UserErrorsWithoutTraceback) for f in logger.filters):
            logger.addFilter(_UserErrorsWithoutTraceback())
