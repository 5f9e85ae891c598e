"""Arrow schemas of every artifact table: the single place that defines each column.

An artifact is a directory (``<root>/<campaign>/round-<k>/<stage>/``) holding one or more
named Parquet tables plus ``manifest.json``. ``TABLES`` maps a table name to its schema; the
artifact store validates every write and read against it. Columns that several tables share
are defined once below and reused.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.premise import FIGURES as PREMISE_FIGURES
from schemas.premise import column as premise_column

# ---------------------------------------------------------------------------- shared columns
ID = pa.field("id", pa.string(), nullable=False)  # stable content hash of a row
IMAGES = pa.field("images", pa.list_(pa.binary()), nullable=False)  # encoded image bytes (PNG/JPEG)
IMAGE_WIDTHS = pa.field("image_widths", pa.list_(pa.int32()), nullable=False)
IMAGE_HEIGHTS = pa.field("image_heights", pa.list_(pa.int32()), nullable=False)
PROBLEM = pa.field("problem", pa.string(), nullable=False)  # question text; may hold <image> placeholders
ORACLE_ANSWER = pa.field("oracle_answer", pa.string())  # hidden label: diagnostics only, never trained on
SOURCE = pa.field("source", pa.string(), nullable=False)  # file or generator the row came from
METADATA = pa.field("metadata", pa.string())  # JSON object with source-specific extras
PROMPT_ID = pa.field("prompt_id", pa.string(), nullable=False)
RESPONSE = pa.field("response", pa.string(), nullable=False)

# ---------------------------------------------------------------------------- tables
WORLD = pa.schema(
    [
        ID,
        IMAGES,
        PROBLEM,
        pa.field("answer", pa.string(), nullable=False),
        pa.field("solution", pa.string(), nullable=False),  # short rationale ending in \boxed{answer}
        pa.field("task", pa.string(), nullable=False),
        pa.field("choices", pa.list_(pa.string())),  # A-D option texts for multiple choice, else null
        pa.field("difficulty", pa.int8(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        # Another question about the same image, with its answer: first SFT teaches question writing
        # (the synthesis task) from these, so the model can synthesize in later rounds.
        pa.field("sibling_problem", pa.string(), nullable=False),
        pa.field("sibling_answer", pa.string(), nullable=False),
    ]
)
"""The embedded world's output, in the MM-UPT/EasyR1 training layout (images, problem, answer)
plus the generator's extras. It enters the pipeline through ingest like any user dataset."""

SAMPLES = pa.schema([ID, IMAGES, IMAGE_WIDTHS, IMAGE_HEIGHTS, PROBLEM, ORACLE_ANSWER, SOURCE, METADATA])
"""Validated, normalised questions: the output of ingest and the input of every later stage."""

REJECTS = pa.schema(
    [
        pa.field("row", pa.string(), nullable=False),  # row id, or position in its source file
        pa.field("source", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # short machine-friendly code, e.g. image_decode
        pa.field("detail", pa.string()),  # human-readable explanation
    ]
)
"""Rows a stage refused, with the reason; nothing is dropped silently."""

SYNTHETIC = pa.schema(
    list(SAMPLES)
    + [
        pa.field("parent_id", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),  # in-context | direct
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("generator_model", pa.string(), nullable=False),
    ]
)
"""Questions written by the model; ``oracle_answer`` is always null."""

LABELS = pa.schema(
    [
        PROMPT_ID,
        pa.field("pseudo_label", pa.string()),  # canonical majority answer, null when skipped
        pa.field("vote_share", pa.float64(), nullable=False),
        pa.field("n_valid", pa.int32(), nullable=False),
        pa.field("skip_reason", pa.string()),  # null when a pseudo-label was assigned
    ]
)

REWARDS = pa.schema(
    [
        PROMPT_ID,
        pa.field("response_index", pa.int32(), nullable=False),
        pa.field("answer", pa.string()),  # canonical extracted answer, null when unparsable
        pa.field("reward", pa.float64(), nullable=False),
    ]
)

ROLLOUTS = pa.schema(
    [
        pa.field("step", pa.int32(), nullable=False),
        PROMPT_ID,
        PROBLEM,
        pa.field("response_index", pa.int32(), nullable=False),
        RESPONSE,
        pa.field("answer", pa.string()),
        pa.field("pseudo_label", pa.string()),
        pa.field("vote_share", pa.float64(), nullable=False),
        pa.field("reward", pa.float64(), nullable=False),
        pa.field("advantage", pa.float64(), nullable=False),
        pa.field("oracle_answer", pa.string()),
        pa.field("response_tokens", pa.int32(), nullable=False),
    ]
)

PREDICTIONS = pa.schema(
    [
        ID,
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("subset", pa.string()),  # JSON object of breakdown keys (version, level, subject, ...)
        RESPONSE,
        pa.field("extracted", pa.string()),
        pa.field("gold", pa.string()),
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("note", pa.string()),  # e.g. timeout, empty_response
    ]
)

SCORES = pa.schema(
    [
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("subset", pa.string(), nullable=False),  # "all" or "key=value"
        pa.field("value", pa.float64(), nullable=False),
        pa.field("n", pa.int64(), nullable=False),
    ]
)

PREMISE = pa.schema(
    [
        pa.field("task", pa.string(), nullable=False),  # a task of the dev rows, or "all" (every row)
        pa.field("rows", pa.int64(), nullable=False),
        # One column per figure, named after its metric (``premise/greedy`` -> ``greedy``): the names
        # are defined once, in schemas/premise.py.
        *(pa.field(premise_column(metric), pa.float64(), nullable=False) for metric in PREMISE_FIGURES),
    ]
)
"""The premise check (``stages/premise.py``): greedy vs one sample vs majority@n on labelled dev rows."""

PREMISE_BINS = pa.schema(
    [
        pa.field("bin", pa.string(), nullable=False),  # e.g. "[0.75,0.875)"
        pa.field("low", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("prompts", pa.int64(), nullable=False),  # rows with a pseudo-label in this bin
        pa.field("precision", pa.float64(), nullable=False),  # share of those pseudo-labels that are right
        pa.field("greedy", pa.float64(), nullable=False),  # greedy accuracy on the same rows
    ]
)
"""Pseudo-label precision by vote share: where a confident vote would teach the model something."""

TABLES: dict[str, pa.Schema] = {
    "world": WORLD,
    "samples": SAMPLES,
    "rejects": REJECTS,
    "synthetic": SYNTHETIC,
    "labels": LABELS,
    "rewards": REWARDS,
    "rollouts": ROLLOUTS,
    "predictions": PREDICTIONS,
    "scores": SCORES,
    "premise": PREMISE,
    "premise_bins": PREMISE_BINS,
}
"""Catalog: table name -> schema. A table is stored as ``<artifact dir>/<name>.parquet``."""


def schema_for(name: str) -> pa.Schema:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown artifact table {name!r}; known: {', '.join(sorted(TABLES))}") from None
