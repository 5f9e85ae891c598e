"""Synthesis: the model writes new questions about the samples' images (in-context and direct).

Entry points: ``run_synthesize`` (the stage) and ``mix_samples`` (originals + synthetic -> training
input). ``REASONS`` lists every reject reason code with its meaning.
"""

from stages.synthesis.mix import mix_samples
from stages.synthesis.prompts import PROMPT_VERSION
from stages.synthesis.run import REASONS, read_samples, run_synthesize

__all__ = ["PROMPT_VERSION", "REASONS", "mix_samples", "read_samples", "run_synthesize"]
