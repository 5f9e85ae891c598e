"""Where a campaign keeps its artifacts: one object owns every path under a campaign folder.

    <campaign>/campaign.json            the stamp the directory lock checks (name + config hash)
    <campaign>/campaign.summary.json    champion, stop reason, every round's record
    <campaign>/comparison.png
    <campaign>/round-0/{world,base-model,sft,ingest,premise,evaluate-<benchmark>}/, decision.json
    <campaign>/round-k/{premise,window,synthesize,mix,train,evaluate-<benchmark>}/, decision.json,
                       training_curves.png
    <artifact>/model/                   a model checkpoint inside an artifact (sft, train, ...)
    <train artifact>/metrics.jsonl      one line per optimizer step

The flows, ``mmupt compare``, the CLI and the tests all ask this module, so a folder is renamed in
one place, and a reader finds which stage wrote a folder from its name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_DIR = "model"  # where an artifact keeps a model checkpoint; hashed into its content hash
METRICS_FILE = "metrics.jsonl"  # training's per-step metrics, in the train artifact
DECISION_FILE = "decision.json"
SUMMARY_FILE = "campaign.summary.json"
STAMP_FILE = "campaign.json"
ROUND_GLOB = "round-*"
ROUND_INDEX_REGEX = r"round-([0-9]+)"  # for DuckDB's regexp_extract over artifact paths


@dataclass(frozen=True)
class RoundLayout:
    """The folders of one round; each stage's artifact is ``<round>/<stage>``."""

    dir: Path
    index: int

    def stage(self, name: str) -> Path:
        return self.dir / name

    def evaluation(self, benchmark: str) -> Path:
        return self.dir / f"evaluate-{benchmark}"

    @property
    def world(self) -> Path:
        return self.stage("world")

    @property
    def base_model(self) -> Path:
        return self.stage("base-model")

    @property
    def sft(self) -> Path:
        return self.stage("sft")

    @property
    def ingest(self) -> Path:
        return self.stage("ingest")

    @property
    def premise(self) -> Path:
        return self.stage("premise")

    @property
    def window(self) -> Path:
        return self.stage("window")

    @property
    def synthesize(self) -> Path:
        return self.stage("synthesize")

    @property
    def mix(self) -> Path:
        return self.stage("mix")

    @property
    def train(self) -> Path:
        return self.stage("train")

    @property
    def decision(self) -> Path:
        return self.dir / DECISION_FILE

    @property
    def training_curves(self) -> Path:
        return self.dir / "training_curves.png"

    @property
    def run_name(self) -> str:
        """The round's MLflow run and Prefect names use the folder's name."""
        return self.dir.name


@dataclass(frozen=True)
class CampaignLayout:
    """Every path of one campaign folder (see the module docstring).

    >>> layout = CampaignLayout(Path("runs/demo"))
    >>> layout.round(2).train.as_posix(), model_in(layout.round(2).train).as_posix()
    ('runs/demo/round-2/train', 'runs/demo/round-2/train/model')
    >>> layout.baseline.evaluation("world").as_posix(), layout.round(1).run_name
    ('runs/demo/round-0/evaluate-world', 'round-1')
    """

    root: Path

    def round(self, index: int) -> RoundLayout:
        return RoundLayout(self.root / f"round-{index}", index)

    @property
    def baseline(self) -> RoundLayout:
        return self.round(0)

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def stamp(self) -> Path:
        return self.root / STAMP_FILE

    @property
    def comparison_png(self) -> Path:
        return self.root / "comparison.png"

    def decisions(self) -> list[Path]:
        """Every round's ``decision.json`` that exists, in path order."""
        return sorted(self.root.glob(f"{ROUND_GLOB}/{DECISION_FILE}"))


def model_in(artifact_dir: Path) -> Path:
    """The model checkpoint inside an artifact (``<artifact>/model``)."""
    return Path(artifact_dir) / MODEL_DIR
