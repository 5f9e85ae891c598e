"""Round comparison: one DuckDB query per question over every round's artifacts.

``compare_campaign`` returns benchmarks x rounds, self-reward signals per round, synthetic-question
survival per round and the premise check (majority@n vs greedy on dev rows, round 0), and draws
them as one PNG.

The signals are each round's ``RoundRecord.signals`` (``decision.json``): the means over the
round's last training steps (``stages.gate.round_signals``), under the names of
``schemas.metrics.ROUND_SIGNALS``. They are the numbers the gate and the collapse detector
decide on and the campaign's MLflow run charts, so every view shows one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mmupt.errors import MmuptError
from mmupt.paired import PairedResult, mcnemar_exact
from mmupt.store import duckdb_views
from schemas import metrics
from schemas.layout import CampaignLayout
from schemas.premise import FIGURES as PREMISE_FIGURES
from schemas.premise import column as premise_column
from schemas.records import RoundRecord
from stages.gate import champion_record

SCORES_SQL = """
SELECT round, benchmark, value FROM scores
WHERE metric = 'accuracy' AND subset = 'all' AND round IS NOT NULL
ORDER BY round, benchmark
"""

SURVIVAL_SQL = """
SELECT s.round, s.kept, coalesce(r.dropped, 0) AS dropped,
       s.kept / (s.kept + coalesce(r.dropped, 0)) AS survival
FROM (SELECT round, count(*)::DOUBLE AS kept FROM synthetic GROUP BY round) s
LEFT JOIN (SELECT round, count(*)::DOUBLE AS dropped FROM rejects WHERE artifact LIKE '%synthesize%' GROUP BY round) r
USING (round) ORDER BY s.round
"""


PAIRED_SQL = """
SELECT p.benchmark, p.round,
       count(*) AS rows,
       avg(CASE WHEN b.correct THEN 1.0 ELSE 0.0 END) AS before,
       avg(CASE WHEN p.correct THEN 1.0 ELSE 0.0 END) AS after,
       sum(CASE WHEN p.correct AND NOT b.correct THEN 1 ELSE 0 END) AS fixed,
       sum(CASE WHEN b.correct AND NOT p.correct THEN 1 ELSE 0 END) AS broken
FROM predictions p
JOIN predictions b ON b.id = p.id AND b.benchmark = p.benchmark AND b.round = 0 AND b.artifact LIKE '%evaluate-%'
WHERE p.round > 0 AND p.artifact LIKE '%evaluate-%'
GROUP BY p.benchmark, p.round ORDER BY p.benchmark, p.round
"""
"""Each round's evaluation against round 0's, row by row (the same items, the same greedy rule)."""

PREMISE_SQL = f"""
SELECT round, {", ".join(premise_column(m) for m in PREMISE_FIGURES)} FROM premise
WHERE task = 'all' AND round IS NOT NULL ORDER BY round
"""


@dataclass
class Comparison:
    rounds: list[int]
    scores: dict[str, dict[int, float]]  # benchmark -> round -> accuracy
    signals: dict[int, dict[str, float]]  # round -> schemas.metrics.ROUND_SIGNALS (RoundRecord.signals)
    survival: dict[int, float]  # round -> share of synthetic candidates kept
    premise: dict[str, dict[int, float]] = field(default_factory=dict)  # premise/<figure> -> round -> value
    paired: dict[str, dict[int, PairedResult]] = field(
        default_factory=dict
    )  # benchmark -> round -> vs round 0
    decisions: dict[int, str] = field(default_factory=dict)  # round -> baseline / promoted / rejected
    champions: dict[int, int] = field(default_factory=dict)  # round -> the champion's round after it


def compare_campaign(campaign_dir: str | Path) -> Comparison:
    campaign_dir = Path(campaign_dir)
    if not campaign_dir.is_dir():
        raise MmuptError(f"{campaign_dir}: campaign directory not found")
    con = duckdb_views(campaign_dir)
    views = {row[0] for row in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    if "scores" not in views:
        raise MmuptError(f"{campaign_dir}: no evaluation scores yet (run at least round 0 of a campaign)")
    scores: dict[str, dict[int, float]] = {}
    for round_index, benchmark, value in con.sql(SCORES_SQL).fetchall():
        scores.setdefault(benchmark, {})[round_index] = value
    records = round_records(campaign_dir)
    signals = {r: record.signals for r, record in records.items() if record.signals}
    survival = {}
    if "synthetic" in views:
        survival = {r: s for r, _, _, s in con.sql(SURVIVAL_SQL).fetchall()}
    premise: dict[str, dict[int, float]] = {}
    if "premise" in views:
        for round_index, *values in con.sql(PREMISE_SQL).fetchall():
            for metric, value in zip(PREMISE_FIGURES, values, strict=True):
                premise.setdefault(metric, {})[round_index] = value
    paired: dict[str, dict[int, PairedResult]] = {}
    if "predictions" in views:
        for benchmark, round_index, rows, before, after, fixed, broken in con.sql(PAIRED_SQL).fetchall():
            paired.setdefault(benchmark, {})[round_index] = PairedResult(
                rows, before, after, int(fixed), int(broken), mcnemar_exact(int(fixed), int(broken))
            )
    rounds = sorted(
        {r for per in scores.values() for r in per}
        | set(signals)
        | {r for per in premise.values() for r in per}  # a round its premise check stopped
    )
    return Comparison(
        rounds=rounds,
        scores=scores,
        signals=signals,
        survival=survival,
        premise=premise,
        paired=paired,
        decisions={r: record.outcome for r, record in records.items()},
        champions=champions_after(records),
    )


def champions_after(records: dict[int, RoundRecord]) -> dict[int, int]:
    """Round -> the round whose model is champion once that round is decided (``champion_record``)."""
    if 0 not in records:  # no baseline yet: no champion
        return {}
    history = [records[r] for r in sorted(records)]
    return {record.round: champion_record(history[: i + 1]).round for i, record in enumerate(history)}


def round_records(campaign_dir: Path) -> dict[int, RoundRecord]:
    """Every finished round's record (``decision.json``): its outcome and its signals."""
    records = (
        RoundRecord.model_validate_json(path.read_text(encoding="utf-8"))
        for path in CampaignLayout(campaign_dir).decisions()
    )
    return {record.round: record for record in records}


def comparison_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """A header and rows (metrics x rounds) ready for printing."""
    header = ["metric"] + [f"round {r}" for r in comparison.rounds]

    def cells(values: dict[int, float]) -> list[str]:
        return [f"{values[r]:.3f}" if values.get(r) is not None else "-" for r in comparison.rounds]

    rows = [[f"{name} accuracy"] + cells(per) for name, per in sorted(comparison.scores.items())]
    for key in metrics.ROUND_SIGNALS:  # means over each round's last training steps
        per = {r: s[key] for r, s in comparison.signals.items() if key in s}
        if per:
            rows.append([key] + cells(per))
    if comparison.survival:
        rows.append(["synthetic survival"] + cells(comparison.survival))
    for name, per_round in sorted(comparison.paired.items()):
        rows.append(
            [f"{name} vs round 0 (paired)"]
            + [
                f"{per_round[r].gain_points:+.1f} pts, p={per_round[r].p_value:.2g}"
                if r in per_round
                else "-"
                for r in comparison.rounds
            ]
        )
    if comparison.decisions:
        rows.append(["gate"] + [comparison.decisions.get(r, "-") for r in comparison.rounds])
    if comparison.champions:
        rows.append(
            ["champion"]
            + [
                f"round {comparison.champions[r]}" if r in comparison.champions else "-"
                for r in comparison.rounds
            ]
        )
    for metric in PREMISE_FIGURES:  # majority@n vs greedy on the dev rows (round 0; later rounds' starts)
        if comparison.premise.get(metric):
            rows.append([metric] + cells(comparison.premise[metric]))
    return header, rows


def _pyplot():
    """pyplot on the file-only Agg backend: flows run headless (Prefect workers, CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: str | Path) -> Path:
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    _pyplot().close(fig)
    return out_png


def plot_comparison(comparison: Comparison, out_png: str | Path) -> Path:
    """Accuracy per benchmark and self-reward signals across rounds, as one PNG."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, per in sorted(comparison.scores.items()):
        xs = sorted(per)
        left.plot(xs, [per[x] for x in xs], marker="o", label=name)
    left.set(title="accuracy by round", xlabel="round", ylabel="accuracy")
    left.legend()
    for key in (metrics.VOTE_SHARE, metrics.LABEL_ACCURACY, metrics.VOTE_SKIPPED):
        per = {r: s[key] for r, s in comparison.signals.items() if key in s}
        if per:
            xs = sorted(per)
            right.plot(xs, [per[x] for x in xs], marker="o", label=key)
    right.set(title="self-reward signals by round", xlabel="round")
    from matplotlib.ticker import MaxNLocator

    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    if right.lines:
        right.legend()
    return _save(fig, out_png)


def plot_training_curves(metrics_jsonl: str | Path, out_png: str | Path) -> Path | None:
    """Self-reward signals over the steps of one training run (vote share, reward, pseudo-label accuracy)."""

    plt = _pyplot()
    path = Path(metrics_jsonl)
    if not path.is_file():
        return None
    steps = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not steps:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in (metrics.VOTE_SHARE, metrics.REWARD_MEAN, metrics.LABEL_ACCURACY, metrics.VOTE_SKIPPED):
        points = [(s["step"], s[key]) for s in steps if isinstance(s.get(key), int | float)]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=key)
    ax.set(title="training signals by step", xlabel="step", ylim=(0, 1))
    ax.legend()
    return _save(fig, out_png)
