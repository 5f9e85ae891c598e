"""MLflow tracking with the campaign layout of design.md section 9.

One experiment per campaign; a parent run per campaign whose round-level metrics are logged at
``step=round`` (so the MLflow UI charts progress across rounds); a child run per round; a nested
run per stage. With no ``MLFLOW_TRACKING_URI`` the store is a sqlite file inside the campaign
directory, so tracking works with no server at all; ``deploy/start_mlflow.sh`` serves the same
store on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mmupt.health import require_reachable
from schemas.campaign import ModelRegistry

log = logging.getLogger(__name__)

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

MAX_PARAM_CHARS = 500  # MLflow's sqlite store rejects longer param values


def tracking_uri(campaign_dir: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a sqlite store in the campaign directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    path = Path(campaign_dir).resolve() / "mlflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def check_server(uri: str) -> None:
    """Fail with the URL when an http tracking server is configured but down."""
    if uri.startswith("http"):
        require_reachable(
            uri,
            "MLflow server",
            "start it with deploy/start_mlflow.sh or unset MLFLOW_TRACKING_URI to track into the campaign's sqlite file",
        )


def use_campaign(campaign_dir: str | Path, experiment: str) -> str:
    """Point MLflow at the campaign's store and experiment (artifacts beside the store)."""
    import mlflow

    uri = tracking_uri(campaign_dir)
    check_server(uri)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (
            None if uri.startswith("http") else (Path(campaign_dir).resolve() / "mlartifacts").as_uri()
        )
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return uri


def clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value)[:MAX_PARAM_CHARS] for key, value in params.items()}


@contextlib.contextmanager
def run(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
) -> Iterator[Any]:
    """Start (or resume, with ``run_id``) a run nested under the active or given parent."""
    import mlflow

    nested = mlflow.active_run() is not None or parent_run_id is not None
    with mlflow.start_run(
        run_id=run_id, run_name=None if run_id else name, nested=nested, parent_run_id=parent_run_id
    ) as active:
        if params:
            mlflow.log_params(clean_params(params))
        if tags:
            mlflow.set_tags(dict(tags))
        yield active


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log the numeric entries of ``metrics`` (others are skipped) to the active run."""
    import mlflow

    numeric = {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if numeric:
        mlflow.log_metrics(numeric, step=step)


def register_model(
    model_dir: str | Path, name: str, alias: str | None = None, mode: ModelRegistry = "copy"
) -> str | None:
    """Register ``model_dir`` as a version of ``name`` from the active run; set ``alias``. Returns the version.

    ``copy``: log the checkpoint as the run's ``model`` artifact and register that copy (self-contained
    store; right for the tiny model). ``reference``: register the checkpoint where it lies, copying
    nothing (a 7B checkpoint per round would otherwise double the disk it takes). ``off``: no
    registry entry; the run gets a ``model_dir`` tag. Registration goes through
    ``create_model_version`` with a plain source, which works for any HF checkpoint directory
    without an MLflow flavour wrapper.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("register_model needs an active MLflow run")
    model_dir = Path(model_dir).resolve()
    mlflow.set_tag("model_dir", str(model_dir))
    if mode == "off":
        return None
    if mode == "copy":
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        source = mlflow.get_artifact_uri("model")
    else:
        source = str(model_dir)
    client = MlflowClient()
    with contextlib.suppress(MlflowException):
        client.create_registered_model(name)
    version = client.create_model_version(name, source=source, run_id=active.info.run_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def log_dataset(artifact_dir: str | Path, name: str, context: str) -> None:
    """Record an artifact as an MLflow dataset input of the active run (source path + content hash)."""
    import warnings

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from mmupt.store import artifact_hash

    with warnings.catch_warnings():  # MLflow registers its local source class twice and warns about it
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(artifact_dir).resolve()))
    dataset = MetaDataset(source=source, name=name, digest=artifact_hash(artifact_dir)[:16])
    mlflow.log_input(dataset, context=context)


def log_figure(figure_path: str | Path, artifact_path: str = "plots") -> None:
    import mlflow

    mlflow.log_artifact(str(figure_path), artifact_path=artifact_path)
