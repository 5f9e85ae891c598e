"""The premise check: majority@n vs greedy on labelled dev rows, its artifact, and the stop rule.

A scripted engine gives hand-computed figures (every rule: ties count as wrong, tie split, pass@n,
winner share with unparsable votes, vote-share bins); a real tiny model checks the artifact path.
"""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmupt.engine.base import Completion, GenerationRequest
from mmupt.errors import InputDataError
from mmupt.store import read_manifest, read_table, write_artifact
from schemas.engine import SamplingParams
from schemas.premise import (
    FIGURES,
    GAIN,
    GREEDY,
    HOLDS,
    MAJORITY,
    MAJORITY_TIE_SPLIT,
    PASS_AT_N,
    ROWS,
    SAMPLE,
    WINNER_SHARE,
    PremiseConfig,
    column,
)
from schemas.world import WorldConfig
from stages.premise import (
    labelled_rows,
    premise_metrics,
    premise_record,
    premise_verdict,
    run_premise,
    stop_message,
)
from stages.world import generate_world
from tests.conftest import png

# id -> (task, gold, greedy answer, sampled answers); None is an unparsable response
SCRIPT: dict[str, tuple[str, str, str | None, list[str | None]]] = {
    "a": ("count", "3", "3", ["3", "3", "3", "4"]),  # vote right, greedy right
    "b": ("count", "5", "4", ["5", "5", "6", "6"]),  # tie: no pseudo-label (wrong), tie split 1/2
    "c": ("sum", "9", "9", ["7", "7", "7", "7"]),  # unanimous and wrong, greedy right
    "d": ("sum", "8", "6", ["8", "8", "8", None]),  # vote right where greedy is wrong
}


def boxed(answer: str | None) -> str:
    return "I am not sure." if answer is None else f"So the answer is \\boxed{{{answer}}}."


class ScriptedEngine:
    """An ``Engine`` that answers from ``SCRIPT``: greedy at T=0, the scripted samples otherwise."""

    model_id = "scripted"

    def generate(self, requests: list[GenerationRequest], sampling: SamplingParams) -> list[list[Completion]]:
        out = []
        for request in requests:
            _, _, greedy, samples = SCRIPT[request.request_id]
            texts = [boxed(greedy)] if sampling.temperature == 0 else [boxed(a) for a in samples]
            assert len(texts) == sampling.n
            out.append([Completion(t, [1, 2], "stop") for t in texts])
        return out


def samples_parquet(path, labels: dict[str, str | None], with_label_column: bool = True):
    data = {
        "id": list(labels),
        "images": [[png()] for _ in labels],
        "problem": [f"<image>question {i}" for i in labels],
        "metadata": [json.dumps({"task": SCRIPT[i][0]}) if i in SCRIPT else None for i in labels],
    }
    if with_label_column:
        data["oracle_answer"] = pa.array(list(labels.values()), pa.string())
    pq.write_table(pa.table(data), path)
    return path


CONFIG = PremiseConfig(n=4, rows=10, max_new_tokens=16)


# ---------------------------------------------------------------------------- figures by hand
def test_scripted_figures_match_the_hand_computed_ones(tmp_path):
    source = samples_parquet(tmp_path / "dev.parquet", {k: v[1] for k, v in SCRIPT.items()})
    manifest = run_premise(ScriptedEngine(), source, CONFIG, tmp_path / "premise")
    stats = manifest.stats
    assert stats[GREEDY] == 0.5  # a, c
    assert stats[SAMPLE] == pytest.approx((3 / 4 + 2 / 4 + 0 + 3 / 4) / 4)
    assert stats[MAJORITY] == 0.5  # a, d (b is a tie: no pseudo-label, counted wrong)
    assert stats[MAJORITY_TIE_SPLIT] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert stats[PASS_AT_N] == 0.75  # not c
    assert stats[WINNER_SHARE] == pytest.approx((0.75 + 0.5 + 1.0 + 0.75) / 4)  # d: None still a voter
    assert stats[GAIN] == 0.0 and stats[ROWS] == 4 and stats["split"] is None
    table = {r["task"]: r for r in read_table(tmp_path / "premise", "premise").to_pylist()}
    assert set(table) == {"count", "sum", "all"} and table["all"]["rows"] == 4
    assert table["count"][column(GREEDY)] == 0.5 and table["count"][column(MAJORITY)] == 0.5
    assert table["sum"][column(MAJORITY_TIE_SPLIT)] == 0.5 and table["sum"][column(PASS_AT_N)] == 0.5
    assert all(table["all"][column(m)] == pytest.approx(stats[m]) for m in FIGURES)
    assert stats["by_task"]["count"][GREEDY] == 0.5
    bins = {b["bin"]: b for b in read_table(tmp_path / "premise", "premise_bins").to_pylist()}
    assert bins == {
        "[0.75,0.875)": {
            "bin": "[0.75,0.875)",
            "low": 0.75,
            "high": 0.875,
            "prompts": 2,
            "precision": 1.0,
            "greedy": 0.5,
        },
        "[0.875,1]": {
            "bin": "[0.875,1]",
            "low": 0.875,
            "high": 1.0,
            "prompts": 1,
            "precision": 0.0,
            "greedy": 1.0,
        },
    }
    assert stats["precision_by_vote_share"]["[0.875,1]"] == {"prompts": 1, "precision": 0.0, "greedy": 1.0}
    metrics = premise_metrics(stats)
    assert metrics[MAJORITY] == 0.5 and metrics[f"{GREEDY}/sum"] == 0.5 and f"{ROWS}/sum" not in metrics


def test_unlabelled_rows_are_skipped_and_rows_caps_the_count(tmp_path):
    labels = {"a": "3", "x": None, "b": "5", "c": "9", "d": "8"}
    source = samples_parquet(tmp_path / "dev.parquet", labels)
    rows = labelled_rows(source, limit=3)
    assert rows.table["id"].to_pylist() == ["a", "b", "c"] and rows.split is None
    assert rows.table["task"].to_pylist() == ["count", "count", "sum"]  # from metadata


# ---------------------------------------------------------------------------- the stop rule
def figures(majority: float, greedy: float) -> dict:
    return {
        GREEDY: greedy,
        MAJORITY: majority,
        SAMPLE: 0.38,
        MAJORITY_TIE_SPLIT: 0.43,
        PASS_AT_N: 0.9,
        WINNER_SHARE: 0.7,
        GAIN: round(majority - greedy, 4),
        ROWS: 200,
        "n": 8,
        "split": "dev",
    }


def test_verdict_fails_unless_majority_beats_greedy_by_more_than_min_gain():
    failed = premise_verdict(figures(0.41, 0.45), PremiseConfig())
    assert failed is not None and "\n" not in failed
    assert failed.startswith(
        "self-reward has nothing to distil for this model: majority@8 0.410 <= greedy 0.450 on 200 dev rows"
    )
    assert premise_verdict(figures(0.45, 0.45), PremiseConfig()) is not None  # level is not above
    assert premise_verdict(figures(0.46, 0.45), PremiseConfig()) is None
    strict = PremiseConfig(min_gain=0.02)
    assert "min_gain 0.020" in premise_verdict(figures(0.46, 0.45), strict)
    assert premise_verdict(figures(0.48, 0.45), strict) is None


def test_require_premise_stops_and_its_absence_only_warns():
    record = premise_record(figures(0.41, 0.45), PremiseConfig())
    assert record[HOLDS] == 0.0 and record["verdict"] and "majority@8 0.410" in record["summary"]
    stop = stop_message(record, PremiseConfig())
    assert stop is not None and stop.startswith(record["verdict"]) and "require_premise: false" in stop
    assert stop_message(record, PremiseConfig(require_premise=False)) is None
    assert stop_message(None, PremiseConfig()) is None  # no dev set: nothing measured, nothing to stop
    holding = premise_record(figures(0.5, 0.45), PremiseConfig())
    assert holding[HOLDS] == 1.0 and stop_message(holding, PremiseConfig()) is None


def test_verdict_fields_do_not_change_the_measurement_cache_key():
    base = PremiseConfig()
    assert base.config_hash() == PremiseConfig(min_gain=0.05, require_premise=False).config_hash()
    assert base.config_hash() != PremiseConfig(n=16).config_hash()


# ---------------------------------------------------------------------------- dev sets without labels
def test_a_dev_set_without_labels_names_the_file_and_the_key(tmp_path):
    no_column = samples_parquet(
        tmp_path / "nolabels.parquet", {"a": None, "b": None}, with_label_column=False
    )
    with pytest.raises(InputDataError, match=r"nolabels\.parquet: no `oracle_answer` column"):
        labelled_rows(no_column)
    empty = samples_parquet(tmp_path / "empty.parquet", {"a": None, "b": None})
    with pytest.raises(
        InputDataError, match=r"empty\.parquet: none of its 2 rows has a label in `oracle_answer`"
    ):
        run_premise(ScriptedEngine(), empty, CONFIG, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    table = pq.read_table(empty)
    write_artifact(tmp_path / "samples", "ingest", {"samples": _as_samples(table)})
    with pytest.raises(InputDataError, match=r"samples\.parquet: none of its 2 rows .*`oracle_answer`"):
        labelled_rows(tmp_path / "samples")


def _as_samples(table: pa.Table) -> pa.Table:
    n = table.num_rows
    return (
        table.append_column("image_widths", pa.array([[112]] * n, pa.list_(pa.int32())))
        .append_column("image_heights", pa.array([[112]] * n, pa.list_(pa.int32())))
        .append_column("source", pa.array(["dev"] * n))
    )


def test_world_split_rows_and_a_world_without_them(tmp_path):
    generate_world(WorldConfig(n_sft=2, n_heldout=3, n_unlabeled=2, n_dev=5), tmp_path / "world")
    rows = labelled_rows(tmp_path / "world", "dev", limit=4)
    world = read_table(tmp_path / "world", "world").to_pylist()
    assert rows.table["id"].to_pylist() == [r["id"] for r in world if r["split"] == "dev"][:4]
    assert rows.split == "dev" and set(rows.table["task"].to_pylist()) <= set(WorldConfig().tasks or [])
    generate_world(WorldConfig(n_sft=2, n_heldout=3, n_unlabeled=2, n_dev=0), tmp_path / "old")
    with pytest.raises(InputDataError, match=r"no rows in split 'dev'; regenerate it with n_dev > 0"):
        labelled_rows(tmp_path / "old", "dev")


# ---------------------------------------------------------------------------- a real tiny model
def test_run_premise_with_a_tiny_model(tmp_path, tiny_model_dir):
    generate_world(WorldConfig(n_sft=2, n_heldout=2, n_unlabeled=2, n_dev=6), tmp_path / "world")
    config = PremiseConfig(n=3, rows=6, max_new_tokens=8)
    manifest = run_premise(tiny_model_dir, tmp_path / "world", config, tmp_path / "premise")
    assert read_manifest(tmp_path / "premise").content_hash == manifest.content_hash
    assert manifest.kind == "premise" and manifest.inputs["model"] == tiny_model_dir
    stats = manifest.stats
    assert stats[ROWS] == 6 and stats["split"] == "dev" and stats["n"] == 3
    table = read_table(tmp_path / "premise", "premise").to_pylist()
    by_task = {r["task"]: r for r in table}
    assert sum(r["rows"] for t, r in by_task.items() if t != "all") == by_task["all"]["rows"] == 6
    for row in table:
        assert all(0.0 <= row[column(m)] <= 1.0 for m in FIGURES if m != GAIN)
        assert row[column(PASS_AT_N)] >= row[column(MAJORITY_TIE_SPLIT)] >= row[column(MAJORITY)]
        assert row[column(PASS_AT_N)] >= row[column(SAMPLE)]
        assert row[column(GAIN)] == pytest.approx(row[column(MAJORITY)] - row[column(GREEDY)], abs=1e-4)
    assert all(by_task["all"][column(m)] == pytest.approx(stats[m]) for m in FIGURES)
    bins = read_table(tmp_path / "premise", "premise_bins").to_pylist()
    assert sum(b["prompts"] for b in bins) <= 6 and all(0 <= b["precision"] <= 1 for b in bins)


def test_vote_diagnostics_script_runs_on_the_shared_code(tmp_path, tiny_model_dir, monkeypatch, capsys):
    from benchmarks import vote_diagnostics

    generate_world(WorldConfig(n_sft=2, n_heldout=3, n_unlabeled=2, n_dev=2), tmp_path / "world")
    argv = ["vote_diagnostics", "--model", tiny_model_dir, "--world", str(tmp_path / "world"), "--rows", "3"]
    argv += ["--n", "2", "--temperature", "1.0", "--max-new-tokens", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    vote_diagnostics.main()
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 2 and report["overall"]["rows"] == 3  # the default --split heldout: 3 rows
    assert set(report["overall"]) >= {column(m) for m in FIGURES}


# ---------------------------------------------------------------------------- reporting
def test_compare_and_the_demo_table_show_the_premise(tmp_path):
    from flows.commands.campaign import premise_line
    from schemas.artifacts import SCORES
    from stages.compare import compare_campaign, comparison_rows

    scores = pa.Table.from_pylist(
        [{"benchmark": "world", "metric": "accuracy", "subset": "all", "value": 0.4, "n": 4}], schema=SCORES
    )
    write_artifact(tmp_path / "round-0" / "evaluate-world", "evaluate", {"scores": scores})
    source = samples_parquet(tmp_path / "dev.parquet", {k: v[1] for k, v in SCRIPT.items()})
    manifest = run_premise(ScriptedEngine(), source, CONFIG, tmp_path / "round-0" / "premise")
    comparison = compare_campaign(tmp_path)
    assert comparison.premise[MAJORITY] == {0: 0.5} and comparison.premise[PASS_AT_N] == {0: 0.75}
    header, rows = comparison_rows(comparison)
    assert header == ["metric", "round 0"]
    assert [MAJORITY, "0.500"] in rows and [GREEDY, "0.500"] in rows and [GAIN, "0.000"] in rows
    record = premise_record(manifest.stats, CONFIG)
    assert premise_line(record).startswith(
        "premise: [bold yellow]fails[/] — majority@4 0.500 vs greedy 0.500"
    )
    assert premise_line(None).startswith("premise: not measured")


def test_rerunning_a_round_applies_the_same_stop_rule(tmp_path):
    from flows.campaign import continue_campaign
    from mmupt.errors import PremiseFailedError
    from schemas.campaign import CampaignConfig

    record = premise_record(figures(0.41, 0.45), PremiseConfig())
    (tmp_path / "campaign.summary.json").write_text(json.dumps({"premise": record, "rounds": []}))
    with pytest.raises(
        PremiseFailedError, match=r"majority@8 0.410 <= greedy 0.450 .*require_premise: false"
    ):
        continue_campaign(CampaignConfig(), tmp_path, 1)
    # a looser min_gain (or require_premise: false) re-decides from the recorded figures and gets past
    # the check (the rerun then fails for want of a finished round 0, which this test does not build)
    for premise in (PremiseConfig(min_gain=-0.05), PremiseConfig(require_premise=False)):
        with pytest.raises(Exception) as past:  # noqa: B017 - any error but the premise one
            continue_campaign(CampaignConfig(premise=premise), tmp_path, 1)
        assert not isinstance(past.value, PremiseFailedError)
