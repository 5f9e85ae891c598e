"""The evaluation stage: load a benchmark, generate answers, score them the benchmark's way.

Kept import-light on purpose: scoring worker processes import scorer modules from this package,
and must not pay for torch or the engine. The entry points are in ``stages.evaluation.run``.
"""
