"""User-facing errors.

Every error a user can cause (bad config, bad input file, missing model) is raised as a
``MmuptError`` subclass whose message is one actionable line: what is wrong, where, and what
to do. The CLI prints that line without a traceback; anything else is a bug and keeps its
traceback.
"""


class MmuptError(Exception):
    """An error caused by the user's input, reported as one line."""


class ConfigError(MmuptError):
    """A config file has an unknown key, a wrong type, or an invalid value."""


class InputDataError(MmuptError):
    """An input file cannot be read, or has the wrong layout."""


class ArtifactError(MmuptError):
    """An artifact is missing, incomplete, or does not match its schema."""


class ModelLoadError(MmuptError):
    """A model directory is missing or does not hold a loadable model."""


class NothingSurvivedError(MmuptError):
    """Synthesis produced no usable question: every candidate was filtered out."""


class PremiseFailedError(MmuptError):
    """Round 0's premise check failed: the majority vote is no better label than the greedy answer."""


class CampaignStoppedError(MmuptError):
    """The campaign's stop rule holds (collapse, or too many rejected rounds): no next round."""


class TransientError(MmuptError):
    """One line for the user, and a failure that may pass on retry (a worker process died).

    A campaign's stage tasks retry it (``stage_retries``); every other ``MmuptError`` fails at once,
    since the same input would fail the same way.
    """
