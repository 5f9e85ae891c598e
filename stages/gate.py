"""Gate and collapse detection: decide whether a round's model is promoted, and whether to stop.

Pure functions over numbers the other stages already wrote (evaluation ``scores``, training
``metrics.jsonl``), so every decision can be recomputed and audited after the fact.

- Gate: promote only if no gated benchmark drops by more than ``tolerance`` (absolute) against
  the champion; improvements are not required (a flat round still promotes: self-improvement is
  noisy, and a later round may build on it). ``gate.benchmarks`` names the gated ones (e.g. the
  world's dev split), so that promotion is decided on rows other than the reported test rows; the
  others still get their deltas recorded.
- Collapse (TTRL, arXiv:2504.16084, reports pseudo-label accuracy rising then falling): stop when
  the mean vote share saturates (the model answers one thing whatever the question) or when
  pseudo-label accuracy on the hidden probe falls ``max_probe_drop`` below its best.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from mmupt.store import read_table
from schemas import metrics
from schemas.campaign import BenchmarkSpec, CollapseConfig, GateConfig
from schemas.layout import METRICS_FILE
from schemas.records import RoundRecord


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    deltas: dict[str, float] = field(default_factory=dict)


def suite_scores(eval_dirs: dict[str, Path], specs: list[BenchmarkSpec]) -> dict[str, float]:
    """``{benchmark: value of its gate metric over all items}`` from each evaluation artifact."""
    out = {}
    for spec in specs:
        scores = read_table(eval_dirs[spec.name], "scores")
        hit = scores.filter(
            pc.and_(pc.equal(scores["metric"], spec.gate_metric), pc.equal(scores["subset"], "all"))
        )
        if hit.num_rows == 0:
            raise KeyError(f"{eval_dirs[spec.name]}: no '{spec.gate_metric}' over subset 'all' in scores")
        out[spec.name] = float(hit["value"][0].as_py())
    return out


def gate(champion: dict[str, float], candidate: dict[str, float], config: GateConfig) -> GateDecision:
    """Promote unless a gated benchmark regresses by more than the tolerance.

    Deltas are recorded for every benchmark both rounds have; only those in ``config.benchmarks``
    (all when None) can reject the round.

    >>> gate({"world": 0.5}, {"world": 0.49}, GateConfig(tolerance=0.02)).promote
    True
    >>> gate({"world": 0.5}, {"world": 0.4}, GateConfig(tolerance=0.02)).reason
    'world regressed by 0.100 (> 0.020)'
    >>> gate({"world": 0.5, "world-dev": 0.5}, {"world": 0.4, "world-dev": 0.5},
    ...      GateConfig(tolerance=0.02, benchmarks=["world-dev"])).reason
    'no regression beyond 0.020 on world-dev (world-dev +0.000); not gated: world -0.100'
    """
    deltas = {name: candidate[name] - champion[name] for name in champion if name in candidate}
    gated = {n: d for n, d in deltas.items() if config.benchmarks is None or n in config.benchmarks}
    regressions = {name: d for name, d in gated.items() if d < -config.tolerance}
    if regressions:
        worst = min(regressions, key=regressions.get)
        return GateDecision(
            False, f"{worst} regressed by {-regressions[worst]:.3f} (> {config.tolerance:.3f})", deltas
        )
    gains = ", ".join(f"{n} {d:+.3f}" for n, d in sorted(gated.items()))
    if config.benchmarks is None:
        return GateDecision(True, f"no regression beyond {config.tolerance:.3f} ({gains})", deltas)
    ungated = ", ".join(f"{n} {d:+.3f}" for n, d in sorted(deltas.items()) if n not in gated)
    names = ", ".join(sorted(gated)) or "none of the gated benchmarks (not measured in both rounds)"
    reason = f"no regression beyond {config.tolerance:.3f} on {names}" + (f" ({gains})" if gains else "")
    return GateDecision(True, reason + (f"; not gated: {ungated}" if ungated else ""), deltas)


def read_train_metrics(train_dir: Path) -> list[dict[str, float]]:
    path = Path(train_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def round_signals(steps: list[dict[str, float]], tail: int = 3) -> dict[str, float]:
    """Self-reward signals of a round: means over its last ``tail`` steps."""
    last = steps[-tail:]
    signals = {}
    for key in metrics.ROUND_SIGNALS:
        values = [s[key] for s in last if isinstance(s.get(key), int | float)]
        if values:
            signals[key] = sum(values) / len(values)
    return signals


def collapse_reason(
    signals: dict[str, float], probe_history: list[float], config: CollapseConfig
) -> str | None:
    """Why self-reward has collapsed, or None.

    >>> collapse_reason({"vote/share_mean": 0.99}, [], CollapseConfig(max_vote_share=0.98))
    'vote share 0.990 > 0.980: answers no longer depend on the question'
    >>> collapse_reason({"label/accuracy": 0.5}, [0.8, 0.7], CollapseConfig(max_probe_drop=0.1))
    'pseudo-label accuracy 0.500 fell 0.300 below its best 0.800'
    """
    share = signals.get(metrics.VOTE_SHARE)
    if share is not None and share > config.max_vote_share:
        return (
            f"vote share {share:.3f} > {config.max_vote_share:.3f}: answers no longer depend on the question"
        )
    probe = signals.get(metrics.LABEL_ACCURACY)
    if probe is not None and probe_history:
        best = max(probe_history)
        if best - probe > config.max_probe_drop:
            return f"pseudo-label accuracy {probe:.3f} fell {best - probe:.3f} below its best {best:.3f}"
    return None


def decide_round(
    round_index: int,
    model_dir: Path,
    scores: dict[str, float],
    champion_scores: dict[str, float],
    steps: list[dict[str, float]],
    probe_history: list[float],
    gate_config: GateConfig,
    collapse_config: CollapseConfig,
    **context: Any,
) -> RoundRecord:
    """What a trained round decides, from numbers only: the gate against the champion, the round's
    self-reward signals (its last training steps) and whether they show collapse.

    ``context``: the record's bookkeeping fields (timings, synthesis note, MLflow run, premise).
    """
    decision = gate(champion_scores, scores, gate_config)
    signals = round_signals(steps)
    return RoundRecord(
        round=round_index,
        model_dir=str(model_dir),
        scores=scores,
        signals=signals,
        promote=decision.promote,
        decision=decision.reason,
        deltas=decision.deltas,
        collapse=collapse_reason(signals, probe_history, collapse_config),
        **context,
    )


def campaign_stop(history: Sequence[RoundRecord], config: GateConfig) -> str | None:
    """Why a campaign stops after the last round of ``history`` (round 0 first), or None.

    One rule for every path that runs rounds (the campaign loop and a scheduled "next round"): the
    last round was stopped by its premise check, or flagged collapse, or the last
    ``max_consecutive_rejections`` rounds were rejected.
    """
    if not history:
        return None
    last = history[-1]
    if last.premise_spent:
        verdict = (last.premise or {}).get("verdict")
        return f"premise spent before round {last.round} trained ({verdict})"
    if last.collapse:
        return f"self-reward collapse ({last.collapse})"
    rejections = 0
    for record in reversed(history[1:]):
        if record.promote:
            break
        rejections += 1
    if rejections >= config.max_consecutive_rejections:
        return f"{rejections} rejected rounds in a row"
    return None


def label_accuracy_history(history: Sequence[RoundRecord]) -> list[float]:
    """The pseudo-label accuracies of the rounds in ``history`` that measured one, in round order."""
    return [r.signals[metrics.LABEL_ACCURACY] for r in history if metrics.LABEL_ACCURACY in r.signals]


def champion_record(history: Sequence[RoundRecord]) -> RoundRecord:
    """The record of the newest promoted round (round 0, the baseline, counts as promoted)."""
    return next(r for r in reversed(history) if r.promote)
