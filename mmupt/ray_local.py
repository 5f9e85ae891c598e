"""Start Ray the way every mmupt job does: a user's cluster as given, or a private one on loopback.

Kept free of heavy imports on purpose: ``quiet_ray_worker`` runs at the start of *every* Ray worker
process of a job (controller, queue and coordinator actors too), and importing torch there cost
each of them ~4 s of CPU on a 2-core machine, for actors that never touch a model.
"""

from __future__ import annotations

import logging
import os
from typing import Any

# A private single-node cluster is reachable from this machine only. Ray binds its servers to the
# node's address; on Linux that is the outward-facing interface unless Ray treats the node as a
# one-machine cluster (what it does on macOS), which this variable selects.
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# The preemption watcher (one more actor per job) watches for cloud nodes being drained; a private
# cluster on this machine has no such nodes, and the actor's start-up logged a core_worker error.
LOCAL_JOB_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
# Ray Train replaces print() in its workers with a tee to the root logger, so a library's print
# that the worker captures (DeepSpeed's "op built successfully", once per job) still reached the
# console. Plain print: captured output stays captured, the rest is forwarded to the driver as usual.
JOB_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
# A new local cluster uses token authentication by default (what a private cluster should use) and
# says so in a warning at every start. The mode cannot simply be named in the environment here: Ray
# caches its config at import, and a driver whose cache disagrees with the cluster it starts fails
# to connect. So the notice is muted, the default kept; a user's RAY_AUTH_MODE still wins.
AUTH_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
# Ray Train's placement-group cleaner: see ``private_cluster_callbacks``.
PLACEMENT_GROUP_CLEANER = "PlacementGroupCleanerCallback"

_private_cluster = False


def quiet_ray_worker() -> None:
    """Ray ``worker_process_setup_hook``: mute Ray Train's placement-group cleaner.

    The cleaner polls the state API, which needs the dashboard. A private cluster runs no cleaner
    (``private_cluster_callbacks``); on a user's cluster started without a dashboard every poll
    would fail and log a warning, hundreds per run, drowning the progress lines. It cannot do its
    job without the state API anyway; the placement group is still removed when the driver's job ends.
    """
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(
        logging.ERROR
    )


def start_ray(address: str | None, num_cpus: int, env_vars: dict[str, str]) -> None:
    """Connect to the cluster at ``address``, or start a private one with ``num_cpus`` on loopback.

    ``env_vars`` go to every worker process of this driver's job (Ray runtime_env).
    """
    import ray
    from ray._private import ray_constants

    runtime_env = job_runtime_env(env_vars, local=not address)
    if address:
        ray.init(address=address, include_dashboard=False, runtime_env=runtime_env)
        return
    os.environ.update(LOCAL_ONLY_ENV)  # inherited by the Ray processes this call starts
    logging.getLogger(AUTH_NOTICE_LOGGER).setLevel(logging.ERROR)
    # Ray reads this switch once at import, and this process may have imported Ray already.
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, _node_ip_address="127.0.0.1"
    )
    global _private_cluster
    _private_cluster = True


def on_private_cluster() -> bool:
    """Whether this process is connected to a cluster it started itself (``start_ray`` without an address)."""
    import ray

    return _private_cluster and ray.is_initialized()


def private_cluster_callbacks(callbacks: list[Any]) -> list[Any]:
    """Ray Train's default callbacks minus the placement-group cleaner, for a private cluster.

    The cleaner is one more detached actor per job that polls the state API to remove the job's
    placement group if the controller dies. A private cluster has no dashboard, so no state API,
    and it dies with the driver, placement groups included: the cleaner protects nothing there.
    It cost an actor process per job, and when a poll failed with anything but the error it
    expects (two private clusters on one machine: "found multiple active Ray instances") its
    thread died with a traceback in the job's output. A user's cluster keeps it.
    """
    return [callback for callback in callbacks if type(callback).__name__ != PLACEMENT_GROUP_CLEANER]


def job_runtime_env(env_vars: dict[str, str], *, local: bool) -> dict[str, Any]:
    """The Ray runtime_env of an mmupt job: its variables, the quiet hook, the private-cluster switches."""
    return {
        "env_vars": {**JOB_ENV, **env_vars, **(LOCAL_JOB_ENV if local else {})},
        "worker_process_setup_hook": f"{__name__}.{quiet_ray_worker.__name__}",
    }
