"""CampaignState: the champion moves only on promotion, and the campaign stops by ``campaign_stop``'s rules,
whether the rounds come one by one (the campaign loop) or from the stored summary (the next round)."""

from __future__ import annotations

import pytest

from schemas import metrics
from schemas.campaign import GateConfig
from schemas.records import RoundRecord
from stages.campaign_state import CampaignState

GATE = GateConfig(max_consecutive_rejections=2)


def record(k: int, promote: bool, *, collapse: str | None = None, probe: float | None = None) -> RoundRecord:
    signals = {} if probe is None else {metrics.LABEL_ACCURACY: probe}
    return RoundRecord(
        round=k,
        model_dir=f"/c/round-{k}/model",
        scores={"world": k / 10},
        signals=signals,
        promote=promote,
        decision="",
        collapse=collapse,
    )


def started() -> CampaignState:
    return CampaignState(GATE, [record(0, True)])


def test_the_champion_moves_only_on_promotion():
    state = started()
    assert state.champion.round == 0
    assert state.advance(record(1, False)) is None and state.champion.round == 0
    assert state.advance(record(2, True)) is None
    assert state.champion.round == 2 and state.champion.scores == {"world": 0.2}
    assert state.advance(record(3, False)) is None and state.champion.model_dir == "/c/round-2/model"


def test_rounds_that_go_fine_never_stop_the_campaign():
    state = started()
    for k in range(1, 8):
        assert state.advance(record(k, promote=k % 2 == 0, probe=0.5 + k / 100)) is None
    assert [r.round for r in state.history] == list(range(8))
    assert state.probe_history == pytest.approx([0.5 + k / 100 for k in range(1, 8)])


def test_max_consecutive_rejections_stop_the_campaign():
    state = started()
    assert state.advance(record(1, False)) is None
    assert state.advance(record(2, True)) is None  # a promotion starts the count again
    assert state.advance(record(3, False)) is None
    assert state.advance(record(4, False)) == "2 rejected rounds in a row"
    assert state.champion.round == 2


def test_collapse_stops_the_campaign_even_on_a_promoted_round():
    state = started()
    assert state.advance(record(1, True, collapse="vote share 0.990 > 0.980")) == (
        "self-reward collapse (vote share 0.990 > 0.980)"
    )
    assert state.champion.round == 1  # the gate promoted it; the stop rule ends the campaign after it


def test_a_spent_premise_stops_the_campaign():
    spent = record(1, False).model_copy(
        update={"premise_spent": True, "premise": {"verdict": "majority <= greedy"}}
    )
    assert started().advance(spent) == "premise spent before round 1 trained (majority <= greedy)"


def test_rounds_must_come_in_order():
    state = started()
    state.advance(record(1, True))
    with pytest.raises(ValueError, match="round 1 does not follow round 1"):
        state.advance(record(1, False))


def test_the_stored_rounds_give_what_the_loop_had(tmp_path):
    """A state rebuilt from the summary (as the next round reads it) = the state the loop reached."""
    rounds = [
        record(0, True),
        record(1, True, probe=0.8),
        record(2, False, probe=0.7),
        record(3, True, probe=0.75),
        record(4, False, probe=0.6),
    ]
    rounds = [
        r.model_copy(update={"model_dir": str(tmp_path / f"round-{r.round}" / "model")}) for r in rounds
    ]
    summary = {"rounds": [r.stored_in(tmp_path).model_dump(mode="json") for r in reversed(rounds)]}
    assert summary["rounds"][0]["model_dir"] == "round-4/model"  # stored relative to the campaign folder

    stored = CampaignState.from_summary(summary, tmp_path, GATE)
    assert stored.history == rounds and stored.last_round == 4 and stored.has_baseline
    for k in range(1, 6):
        replayed = CampaignState(GATE, [rounds[0]])
        for r in rounds[1:k]:
            replayed.advance(r)
        before = stored.before(k)
        assert before.history == replayed.history
        assert before.champion == replayed.champion
        assert before.probe_history == replayed.probe_history
        assert before.stop_reason == replayed.stop_reason
    assert stored.before(3).champion.round == 1 and stored.before(3).probe_history == [0.8, 0.7]
    assert stored.champion.round == 3 and stored.stop_reason is None


def test_a_rerun_round_replaces_the_stored_one_and_keeps_those_after_it():
    stored = CampaignState.from_rounds([record(k, k != 2) for k in range(4)], GATE)
    after = stored.with_round(record(2, True, collapse="probe fell"))
    assert [r.round for r in after.history] == [0, 1, 2, 3]
    assert after.history[2].collapse == "probe fell" and after.champion.round == 3
    assert after.stop_reason is None  # round 3, the last, decides whether the campaign goes on
    assert stored.history[2].collapse is None  # the stored state is unchanged
    nxt = stored.with_round(record(4, False))
    assert nxt.history == [*stored.history, record(4, False)] and nxt.champion.round == 3
