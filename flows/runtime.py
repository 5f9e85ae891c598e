"""Process-level defaults the flows need before Prefect or MLflow is imported.

The embedded defaults must work with no server at all: Prefect then starts a temporary local API,
which can take longer than its 20 s default to come up on a loaded 2-core machine.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def configure() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(Path.home() / ".cache" / "mmupt" / "prefect"))
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "mmupt" / "torch_extensions"))
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
