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
CAMPAIGN_DIR_TAG = "mmupt.campaign_dir"
ROLE_TAG = "mmupt.role"
CONTENT_HASH_TAG = "mmupt.content_hash"
ROUND_TAG = "round"
DESCRIPTION_TAG = "mlflow.note.content"  # what the MLflow UI shows as a run's or experiment's description
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the training view, not the GenAI (traces) one
CONFIG_ARTIFACT = "config.yaml"


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
    _EXPERIMENT["id"] = experiment_id = mlflow.set_experiment(experiment).experiment_id
    client = mlflow.MlflowClient()
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    client.set_experiment_tag(
        experiment_id,
        DESCRIPTION_TAG,
        f"mmupt campaign {experiment!r} ({Path(campaign_dir).resolve()}): a `campaign` run charts each "
        "round at step k; below it one `round-k` run per round, and below each round its stage runs "
        "(`round-k/<stage>`). Compare rounds on the campaign run's metrics, or with `mmupt compare`.",
    )
    return uri


def clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value)[:MAX_PARAM_CHARS] for key, value in params.items()}


def find_run(tags: Mapping[str, str]) -> str | None:
    """The newest run of the campaign's experiment carrying all of ``tags``, else None."""
    import mlflow

    clauses = " and ".join(f"tags.`{key}` = '{_quoted(value)}'" for key, value in tags.items())
    runs = mlflow.search_runs(
        experiment_ids=[_experiment_id()],
        filter_string=clauses,
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


_EXPERIMENT: dict[str, str] = {}


def _experiment_id() -> str:
    """The experiment ``use_campaign`` selected (MLflow's default one otherwise)."""
    import mlflow

    if "id" in _EXPERIMENT:
        return _EXPERIMENT["id"]
    experiment = mlflow.get_experiment_by_name("Default")
    return experiment.experiment_id if experiment is not None else "0"


def _quoted(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("'", "\\'")


def close_interrupted_runs(campaign_dir: str | Path) -> int:
    """Mark this campaign's runs still RUNNING as KILLED; returns how many.

    Called under the campaign directory's lock, so no live process can own them: they belong to a
    campaign that was killed. Without this they would show as running forever.
    """
    import mlflow
    from mlflow import MlflowClient

    runs = mlflow.search_runs(
        experiment_ids=[_experiment_id()],
        filter_string=f"tags.`{CAMPAIGN_DIR_TAG}` = '{_quoted(str(Path(campaign_dir).resolve()))}' "
        "and attributes.status = 'RUNNING'",
        output_format="list",
    )
    client = MlflowClient()
    for stale in runs:
        client.set_terminated(stale.info.run_id, status="KILLED")
    if runs:
        log.info("marked %d MLflow run(s) of an interrupted campaign as KILLED", len(runs))
    return len(runs)


@contextlib.contextmanager
def run(
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
    reuse: Mapping[str, str] | None = None,
    config: Any = None,
) -> Iterator[Any]:
    """Start (or resume, with ``run_id``) a run nested under the active or given parent.

    ``reuse``: tags identifying the run across re-runs (a campaign, a round of it). The newest run
    with them is resumed instead of a second one being created; the tags are set on a new run.
    Params, and ``config`` (a pydantic model) as the ``config.yaml`` artifact, are logged only
    when the run is new (MLflow params cannot change). A stage run under a round's run inherits
    its campaign and round tags and is named ``round-k/<name>``, so the UI tells rounds apart.
    """
    import mlflow

    if run_id is None and reuse:
        run_id = find_run(reuse)
    resumed = run_id is not None
    nested = mlflow.active_run() is not None or parent_run_id is not None
    inherited: dict[str, str] = {}
    if parent_run_id is not None and not resumed and not reuse:
        parent_tags = mlflow.get_run(parent_run_id).data.tags
        # stage runs inherit their campaign (so an interrupted one can be found and closed) and round
        inherited = {k: parent_tags[k] for k in (CAMPAIGN_DIR_TAG, ROUND_TAG) if k in parent_tags}
        if ROUND_TAG in inherited:
            name = f"round-{inherited[ROUND_TAG]}/{name}"
    with mlflow.start_run(
        run_id=run_id, run_name=None if run_id else name, nested=nested, parent_run_id=parent_run_id
    ) as active:
        if params and not resumed:
            mlflow.log_params(clean_params(params))
        if config is not None and not resumed:
            import yaml

            mlflow.log_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), CONFIG_ARTIFACT)
        if reuse:
            mlflow.set_tags(dict(reuse))
        if inherited:
            mlflow.set_tags(inherited)
        if tags:
            mlflow.set_tags(dict(tags))
        yield active


def describe_run(text: str) -> None:
    """Set the active run's description (shown at the top of its page in the MLflow UI)."""
    import mlflow

    mlflow.set_tag(DESCRIPTION_TAG, text)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log the numeric entries of ``metrics`` (others are skipped) to the active run."""
    import mlflow

    numeric = {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if numeric:
        mlflow.log_metrics(numeric, step=step)


def log_step(step: int, metrics: Mapping[str, Any]) -> None:
    """A training job's ``on_metrics`` callback: the step's metrics on the active run, at ``step``."""
    log_metrics(metrics, step=step)


def register_model(
    model_dir: str | Path,
    name: str,
    alias: str | None = None,
    mode: ModelRegistry = "copy",
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """Register ``model_dir`` as a version of ``name`` from the active run; set ``alias``. Returns the version.

    ``copy``: log the checkpoint as the run's ``model`` artifact and register that copy (self-contained
    store; right for the tiny model). ``reference``: register the checkpoint where it lies, copying
    nothing (a 7B checkpoint per round would otherwise double the disk it takes). ``off``: no
    registry entry; the run gets a ``model_dir`` tag. Registration goes through
    ``create_model_version`` with a plain source, which works for any HF checkpoint directory
    without an MLflow flavour wrapper.

    A checkpoint is registered once: a version whose content hash matches is reused (re-run
    campaigns do not grow the store); ``tags`` (round, scores, gate decision) are set on it.
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
    client = MlflowClient()
    with contextlib.suppress(MlflowException):
        client.create_registered_model(name)
    content = checkpoint_hash(model_dir)
    existing = [
        v
        for v in client.search_model_versions(f"name = '{_quoted(name)}'")
        if v.tags.get(CONTENT_HASH_TAG) == content
    ]
    if existing:
        version = existing[0]
    else:
        if mode == "copy":
            mlflow.log_artifacts(str(model_dir), artifact_path="model")
            source = mlflow.get_artifact_uri("model")
        else:
            source = str(model_dir)
        version = client.create_model_version(
            name, source=source, run_id=active.info.run_id, tags={CONTENT_HASH_TAG: content}
        )
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version.version, key, str(value))
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def checkpoint_hash(model_dir: str | Path) -> str:
    """A checkpoint's identity: its artifact's content hash when it is one's ``model/``, else its files' hashes."""
    import hashlib

    from mmupt.store import MANIFEST, file_sha256, read_manifest

    model_dir = Path(model_dir).resolve()
    if (model_dir.parent / MANIFEST).is_file() and model_dir.name == "model":
        return read_manifest(model_dir.parent).content_hash
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(model_dir)}:{file_sha256(path)}".encode())
    return digest.hexdigest()


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


COMPARISON_TABLE = "comparison.json"
"""The campaign run's round-by-round table (`mmupt compare`'s rows), shown by MLflow's artifact view."""


def log_comparison_table(header: list[str], rows: list[list[str]]) -> None:
    """The comparison as an MLflow table artifact: one column per header cell, one row per metric."""
    import mlflow

    mlflow.log_table({column: [row[i] for row in rows] for i, column in enumerate(header)}, COMPARISON_TABLE)
