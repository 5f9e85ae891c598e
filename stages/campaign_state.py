"""A campaign between rounds: its rounds so far, its champion, and whether it goes on.

``CampaignState`` is the bookkeeping both flows share (``campaign_flow``'s loop, and
``continue_campaign`` from the summary on disk), as a pure object over ``RoundRecord``s: the rules
themselves are ``stages.gate``'s (``champion_record``, ``label_accuracy_history``,
``campaign_stop``), so a state rebuilt from the stored rounds decides exactly as the loop did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.campaign import GateConfig
from schemas.records import RoundRecord
from stages.gate import campaign_stop, champion_record, label_accuracy_history


@dataclass
class CampaignState:
    """The rounds of a campaign in round order (round 0, the baseline, first) and its gate config.

    >>> def rec(k, promote, collapse=None):
    ...     return RoundRecord(round=k, model_dir=f"m{k}", promote=promote, decision="", collapse=collapse)
    >>> state = CampaignState(GateConfig(max_consecutive_rejections=2), [rec(0, True)])
    >>> state.advance(rec(1, True)), state.advance(rec(2, False)), state.champion.model_dir
    (None, None, 'm1')
    >>> state.advance(rec(3, False))
    '2 rejected rounds in a row'
    """

    gate: GateConfig
    history: list[RoundRecord] = field(default_factory=list)

    @classmethod
    def from_rounds(
        cls, rounds: Iterable[RoundRecord], gate: GateConfig, before: int | None = None
    ) -> CampaignState:
        """The campaign as its stored rounds say (those before round ``before`` only, when given)."""
        kept = [r for r in rounds if before is None or r.round < before]
        return cls(gate, sorted(kept, key=lambda r: r.round))

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], campaign_dir: Path, gate: GateConfig) -> CampaignState:
        """The campaign as ``campaign.summary.json`` (already parsed) holds it; model paths resolved
        against ``campaign_dir`` (``RoundRecord.read_from``)."""
        rounds = (RoundRecord.model_validate(r).read_from(campaign_dir) for r in summary["rounds"])
        return cls.from_rounds(rounds, gate)

    @property
    def champion(self) -> RoundRecord:
        """The newest promoted round (the baseline until a round is promoted): the next round's start."""
        return champion_record(self.history)

    @property
    def probe_history(self) -> list[float]:
        """The pseudo-label accuracies so far, which the next round's collapse check compares against."""
        return label_accuracy_history(self.history)

    @property
    def stop_reason(self) -> str | None:
        """Why the campaign stops after its last round (``campaign_stop``), or None."""
        return campaign_stop(self.history, self.gate)

    @property
    def last_round(self) -> int:
        """The newest round's index (0 for a campaign with no round yet)."""
        return max((r.round for r in self.history), default=0)

    @property
    def has_baseline(self) -> bool:
        return any(r.is_baseline for r in self.history)

    def advance(self, record: RoundRecord) -> str | None:
        """Add the round just decided (the champion moves to it if it was promoted); why the campaign
        stops now, or None."""
        if self.history and record.round <= self.history[-1].round:
            raise ValueError(f"round {record.round} does not follow round {self.history[-1].round}")
        self.history.append(record)
        return self.stop_reason

    def before(self, round_index: int) -> CampaignState:
        """The campaign as round ``round_index`` starts it: the rounds before it only."""
        return CampaignState.from_rounds(self.history, self.gate, before=round_index)

    def with_round(self, record: RoundRecord) -> CampaignState:
        """The campaign with ``record`` in its round's place (a re-run round replaces the stored one;
        the rounds after it stay)."""
        others = [r for r in self.history if r.round != record.round]
        return CampaignState.from_rounds([*others, record], self.gate)
