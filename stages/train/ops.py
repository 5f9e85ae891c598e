"""Build DeepSpeed's compiled ops once, at set-up, instead of inside the first training job.

On the CPU accelerator every job's ranks load DeepSpeed's shared-memory collective op, a C++
extension compiled on first use (~30 s on 2 cores) into ``TORCH_EXTENSIONS_DIR``. Built inside a
job, that compile sits on the critical path of the first round of a fresh machine (the demo, CI);
built here, it is part of installing, like DeepSpeed's own ``DS_BUILD_OPS``.

    python -m stages.train.ops      # what ``make setup`` runs
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def prebuild_ops() -> list[str]:
    """Build (or find cached) the ops a training job on this machine will load; their names."""
    from stages.train.worker import _worker_environment

    _worker_environment()  # the job's accelerator choice and extension cache, before deepspeed loads
    from deepspeed.accelerator import get_accelerator

    built = []
    for name in ("ShareMemCommBuilder",):
        builder = get_accelerator().create_op_builder(name)
        if builder is None or not builder.is_compatible(verbose=False):
            continue  # this accelerator has no such op (a GPU build uses NCCL instead)
        builder.load(verbose=False)
        built.append(builder.absolute_name())
    return built


if __name__ == "__main__":
    names = prebuild_ops()
    print(f"DeepSpeed ops ready: {', '.join(names) or 'none needed on this accelerator'}")
