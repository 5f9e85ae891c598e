"""Majority voting (stages/vote.py), its artifact and the ``mmupt vote`` command."""

from __future__ import annotations

import doctest
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

import mmupt.answers as answers
import stages.vote as vote_module
from flows.app import app
from flows.commands.vote import vote_command
from mmupt.errors import ConfigError, InputDataError
from mmupt.store import read_manifest, read_table
from schemas.artifacts import LABELS, REWARDS
from schemas.vote import VoteConfig
from stages.vote import run_vote, vote_group, vote_rollouts

CFG = VoteConfig(share_of="all")  # the conservative share most of these tests pin


def test_doctests_pass():
    result = doctest.testmod(vote_module)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------- vote_group
def test_equivalent_answers_are_one_vote():
    result = vote_group(["0.5", "1/2", r"\frac{1}{2}", "3"], CFG)
    assert result.pseudo_label == "0.5"
    assert result.vote_share == 0.75
    assert result.classes == {"0.5": 3, "3": 1}
    assert result.rewards == [1.0, 1.0, 1.0, 0.0]


def test_choice_letters_merge():
    result = vote_group(["(B)", "B", "B.", "C"], CFG)
    assert result.pseudo_label == "B"
    assert result.rewards == [1.0, 1.0, 1.0, 0.0]


def test_unparsable_do_not_vote_but_count_in_the_share():
    cfg = VoteConfig(unparsable_reward=-0.5, share_of="all")
    result = vote_group([None, None, "5", "5"], cfg)
    assert result.n_valid == 2
    assert result.vote_share == 0.5  # 2 of all 4 responses, not 2 of 2 valid
    assert result.pseudo_label == "5"
    assert result.rewards == [-0.5, -0.5, 1.0, 1.0]
    # the string "None" or an empty answer is not a candidate either
    assert vote_group(["", "  ", "5", "5"], cfg).n_valid == 2


def test_one_valid_among_many_is_not_a_majority():
    result = vote_group([None, None, None, "5"], VoteConfig(unparsable_reward=-1.0, share_of="all"))
    assert result.skip_reason == "low_agreement"
    assert result.pseudo_label is None
    assert result.vote_share == 0.25
    assert result.rewards == [0.0, 0.0, 0.0, 0.0]  # skipped: all zero, even unparsable ones


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["1", "2", "1", "2"], "tie"),
        (["0.5", "1/2", "3", "3.0"], "tie"),  # tie between merged classes
        ([None, None], "no_valid_answer"),
        (["7"], "single_response"),
        ([None], "no_valid_answer"),
        (["1", "2", "3", "4"], "tie"),  # tie checked before low agreement
        (["1", "1", "2", "3", "4"], "low_agreement"),
    ],
)
def test_skip_reasons(answers, reason):
    result = vote_group(answers, CFG)
    assert result.skip_reason == reason
    assert result.pseudo_label is None
    assert result.rewards == [0.0] * len(answers)


def test_min_vote_ratio_threshold_is_inclusive():
    answers = ["1", "1", "2", "3"]
    assert vote_group(answers, VoteConfig(min_vote_ratio=0.5)).pseudo_label == "1"
    assert vote_group(answers, VoteConfig(min_vote_ratio=0.6)).skip_reason == "low_agreement"
    assert vote_group(answers, VoteConfig(min_vote_ratio=0.0)).pseudo_label == "1"


def test_soft_reward_is_the_class_share():
    result = vote_group(["1", "1", "1", "2", None], VoteConfig(reward="soft", share_of="all"))
    assert result.rewards == pytest.approx([0.6, 0.6, 0.6, 0.2, 0.0])


def test_n_votes_and_n_train():
    answers = ["1", "2", "2", "1", "1"]
    assert vote_group(answers, CFG).pseudo_label == "1"
    limited = vote_group(answers, VoteConfig(n_votes=3))
    assert limited.pseudo_label == "2"
    assert limited.vote_share == pytest.approx(2 / 3)
    assert limited.rewards == [0.0, 1.0, 1.0, 0.0, 0.0]  # non-voters are still rewarded
    trained = vote_group(answers, VoteConfig(n_votes=5, n_train=2))
    assert trained.rewards == [1.0, 0.0]
    assert len(trained.answers) == 5


def test_n_train_above_n_votes_is_rejected():
    with pytest.raises(ValueError, match="n_train"):
        VoteConfig(n_votes=2, n_train=4)


def test_unanimous_counted_and_optionally_skipped():
    result = vote_group(["5", "5.0", "05"], CFG)
    assert result.unanimous and result.pseudo_label == "5" and result.rewards == [1.0, 1.0, 1.0]
    skipped = vote_group(["5", "5.0", "05"], VoteConfig(skip_unanimous=True))
    assert skipped.skip_reason == "unanimous"
    assert skipped.rewards == [0.0, 0.0, 0.0]
    # an unparsable response gets a different reward, so the group still has a signal
    assert not vote_group(["5", "5", None], VoteConfig(skip_unanimous=True)).unanimous


def test_symbolic_merge_changes_the_vote():
    answers = [r"\frac{\pi}{2}", r"\frac{2\pi}{4}", r"\pi", r"\pi"]
    assert vote_group(answers, VoteConfig(max_symbolic_pairs=0)).pseudo_label == r"\pi"
    assert vote_group(answers, CFG).skip_reason == "tie"


def test_empty_group_is_an_error():
    with pytest.raises(ValueError):
        vote_group([], CFG)


# ---------------------------------------------------------------------------- tables
def rollouts_table(with_index: bool = True) -> pa.Table:
    rows = []
    groups = {
        "p1": [r"\boxed{0.5}", r"\boxed{\frac{1}{2}}", r"\boxed{3}", "no idea"],
        "p2": [r"\boxed{1}", r"\boxed{2}", r"\boxed{1}", r"\boxed{2}"],
        "p3": ["The answer is (C).", r"\boxed{C}", "<answer>C</answer>", r"\boxed{D}"],
    }
    for prompt_id, responses in groups.items():
        for index, response in enumerate(responses):
            rows.append({"prompt_id": prompt_id, "response_index": index, "response": response})
    table = pa.Table.from_pylist(rows)
    return table if with_index else table.drop_columns(["response_index"])


def test_vote_rollouts_tables():
    labels, rewards = vote_rollouts(rollouts_table(), CFG)
    assert labels.schema.equals(LABELS) and rewards.schema.equals(REWARDS)
    by_prompt = {row["prompt_id"]: row for row in labels.to_pylist()}
    assert by_prompt["p1"]["pseudo_label"] == "0.5" and by_prompt["p1"]["n_valid"] == 3
    assert by_prompt["p2"]["skip_reason"] == "tie" and by_prompt["p2"]["pseudo_label"] is None
    assert by_prompt["p3"]["pseudo_label"] == "C" and by_prompt["p3"]["vote_share"] == 0.75
    p1 = [row for row in rewards.to_pylist() if row["prompt_id"] == "p1"]
    assert [row["answer"] for row in p1] == ["0.5", "0.5", "3", None]
    assert [row["reward"] for row in p1] == [1.0, 1.0, 0.0, 0.0]


def test_shuffled_rows_give_identical_results():
    table = rollouts_table()
    expected = vote_rollouts(table, CFG)
    order = list(range(table.num_rows))
    random.Random(7).shuffle(order)
    shuffled = vote_rollouts(table.take(order), CFG)
    assert shuffled[0].equals(expected[0]) and shuffled[1].equals(expected[1])


def test_without_response_index_rows_are_grouped_by_prompt_not_position():
    table = rollouts_table(with_index=False)
    interleaved = table.take([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])  # p1, p2, p3, p1, ...
    labels, rewards = vote_rollouts(interleaved, CFG)
    assert labels.equals(vote_rollouts(rollouts_table(), CFG)[0])
    assert rewards.column("response_index").to_pylist() == [0, 1, 2, 3] * 3


def test_bad_tables():
    with pytest.raises(InputDataError, match="response"):
        vote_rollouts(pa.table({"prompt_id": ["a"]}), CFG)
    with pytest.raises(InputDataError, match="row 1"):
        vote_rollouts(pa.table({"prompt_id": ["a", "a"], "response": ["x", None]}), CFG)
    duplicate = pa.table({"prompt_id": ["a", "a"], "response": ["x", "y"], "response_index": [0, 0]})
    with pytest.raises(InputDataError, match="twice"):
        vote_rollouts(duplicate, CFG)


# ---------------------------------------------------------------------------- artifact and CLI
def write_jsonl(path, table: pa.Table) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()), encoding="utf-8")


def test_run_vote_artifact(tmp_path):
    source = tmp_path / "rollouts.jsonl"
    write_jsonl(source, rollouts_table())
    manifest = run_vote(source, tmp_path / "vote", CFG)
    assert (tmp_path / "vote" / "labels.parquet").is_file()
    assert manifest.rows("labels") == 3 and manifest.rows("rewards") == 12
    assert read_manifest(tmp_path / "vote").content_hash == manifest.content_hash
    stats = manifest.stats
    assert stats["n_prompts"] == 3 and stats["n_labelled"] == 2
    assert stats["skipped"]["tie"] == 1 and stats["n_skipped"] == 1
    assert stats["mean_vote_share"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert stats["unanimous_share"] == 0.0
    assert read_table(tmp_path / "vote", "labels").equals(vote_rollouts(rollouts_table(), CFG)[0])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "no rollouts"),
        ('{"prompt_id": "a"}\n', r"rollouts.jsonl:1: missing column 'response'"),
        ('{"prompt_id": "a", "response": "x"}\nnot json\n', r"rollouts.jsonl:2: not valid JSON"),
        ('["a", "b"]\n', "JSON object"),
    ],
)
def test_run_vote_bad_jsonl(tmp_path, content, match):
    source = tmp_path / "rollouts.jsonl"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(InputDataError, match=match):
        run_vote(source, tmp_path / "vote", CFG)
    assert not (tmp_path / "vote").exists()


def test_run_vote_bad_files(tmp_path):
    parquet = tmp_path / "rollouts.parquet"
    pq.write_table(pa.table({"prompt_id": ["a"], "text": ["x"]}), parquet)
    with pytest.raises(InputDataError, match=r"rollouts.parquet: missing column 'response'"):
        run_vote(parquet, tmp_path / "vote", CFG)
    pq.write_table(
        pa.table({"prompt_id": pa.array([], pa.string()), "response": pa.array([], pa.string())}), parquet
    )
    with pytest.raises(InputDataError, match="no rollouts"):
        run_vote(parquet, tmp_path / "vote", CFG)
    with pytest.raises(InputDataError, match="not found"):
        run_vote(tmp_path / "missing.jsonl", tmp_path / "vote", CFG)
    csv = tmp_path / "rollouts.csv"
    csv.write_text("prompt_id,response\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="unsupported"):
        run_vote(csv, tmp_path / "vote", CFG)


def cli() -> typer.Typer:
    """The command on its own app (a callback keeps it a sub-command, as in the full CLI)."""
    local = typer.Typer()
    local.callback()(lambda: None)
    local.command("vote")(vote_command)
    return local


def test_vote_command_is_registered():
    assert "vote" in [command.name for command in app.registered_commands]


def test_cli_jsonl_and_parquet(tmp_path):
    runner = CliRunner()
    jsonl = tmp_path / "rollouts.jsonl"
    write_jsonl(jsonl, rollouts_table())
    result = runner.invoke(
        cli(), ["vote", "--rollouts", str(jsonl), "--out", str(tmp_path / "a"), "--share-of", "all"]
    )
    assert result.exit_code == 0, result.output
    assert "prompts" in result.output and "tie 1" in result.output
    assert (tmp_path / "a" / "labels.parquet").is_file() and (tmp_path / "a" / "rewards.parquet").is_file()

    parquet = tmp_path / "rollouts.parquet"
    pq.write_table(rollouts_table(), parquet)
    result = runner.invoke(
        cli(),
        [
            "vote",
            "--rollouts",
            str(parquet),
            "--out",
            str(tmp_path / "b"),
            "--min-vote-ratio",
            "0.6",
            "--share-of",
            "all",
        ],
    )
    assert result.exit_code == 0, result.output
    labels = {row["prompt_id"]: row for row in read_table(tmp_path / "b", "labels").to_pylist()}
    assert labels["p1"]["skip_reason"] == "low_agreement"  # 0.5 < 0.6
    assert labels["p3"]["pseudo_label"] == "C"  # 0.75 >= 0.6


def test_cli_config_file(tmp_path):
    runner = CliRunner()
    jsonl = tmp_path / "rollouts.jsonl"
    write_jsonl(jsonl, rollouts_table())
    config = tmp_path / "vote.yaml"
    config.write_text("reward: soft\nn_train: 2\n", encoding="utf-8")
    args = ["vote", "--rollouts", str(jsonl), "--out", str(tmp_path / "v"), "--config", str(config)]
    result = runner.invoke(cli(), args)
    assert result.exit_code == 0, result.output
    rewards = read_table(tmp_path / "v", "rewards")
    assert rewards.num_rows == 6  # 3 prompts x n_train 2
    p3 = [row["reward"] for row in rewards.to_pylist() if row["prompt_id"] == "p3"]
    assert p3 == [0.75, 0.75]

    config.write_text("min_vote_ration: 0.3\n", encoding="utf-8")
    result = runner.invoke(cli(), args)
    assert isinstance(result.exception, ConfigError)
    assert "min_vote_ration" in str(result.exception)


def test_open_pairs_of_a_prompt_go_to_math_verify_in_one_request():
    answers.clear_caches()
    before = answers.symbolic_counters()
    responses = ["x+1", "1+x", "2x-x+1", "x+2", r"\frac{1}{2}", "0.5", None]
    result = vote_group(responses, VoteConfig(min_vote_ratio=0.4))
    after = answers.symbolic_counters()
    assert result.pseudo_label == "x+1" and result.classes == {"x+1": 3, "0.5": 2, "x+2": 1}
    assert after["requests"] == before["requests"] + 1
    # 5 distinct keys ("0.5" and "\frac{1}{2}" share one): every pair but none twice
    assert after["pairs"] - before["pairs"] == 10


def test_share_of_valid_ignores_unparsable_responses_as_the_peers_do():
    answers = ["2", "2", None, None, None]  # two agreeing boxed answers among three truncated ones
    assert vote_group(answers, VoteConfig(share_of="all")).skip_reason == "low_agreement"  # 2/5
    valid = vote_group(answers, VoteConfig())  # the default, as in TTRL and SRT
    assert (
        valid.pseudo_label == "2" and valid.vote_share == 1.0 and valid.rewards == [1.0, 1.0, 0.0, 0.0, 0.0]
    )
    assert vote_group(answers, VoteConfig(min_valid=3)).skip_reason == "few_valid"
    assert vote_group(["2", "3", None], VoteConfig()).skip_reason == "tie"
    with pytest.raises(ValueError):
        VoteConfig(share_of="some")
