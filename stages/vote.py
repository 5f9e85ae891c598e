"""Majority-vote self-reward: sampled responses -> pseudo-labels and per-response rewards.

For each prompt (grouped by ``prompt_id``, never by row position) the final answers of its
responses vote; the largest equivalence class is the pseudo-label and a response's reward says
whether it agrees (MM-UPT). Unlike counting raw ``\\boxed{}`` strings:

- answers vote by equivalence class (``0.5``, ``\\frac{1}{2}``, ``1/2`` are one vote): grouped by
  ``mmupt.answers.equivalence_key``, then the few remaining distinct keys of a group are merged
  by exact and numeric rules, and only what those leave open goes to math-verify, in one request
  per prompt with a time budget (``max_symbolic_seconds``) and a pair cap (``max_symbolic_pairs``);
- unparsable responses do not vote (they count in the share's denominator only with
  ``share_of: all``, see ``VoteConfig``) and get ``unparsable_reward``;
- ties and weak majorities get no pseudo-label; the prompt is skipped and every reward is 0.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmupt.answers import (
    SymbolicBudget,
    canonical_answer,
    decide_pairs,
    equivalence_key,
    extract_answer,
    fast_verdict,
    symbolic_pair,
    symbolic_timeouts,
)
from mmupt.errors import InputDataError
from mmupt.store import Manifest, check_output_dir, file_sha256, read_user_parquet, write_artifact
from mmupt.textio import json_loads, read_text
from schemas.artifacts import LABELS, REWARDS
from schemas.vote import VoteConfig

logger = logging.getLogger(__name__)

SKIP_REASONS = ("no_valid_answer", "few_valid", "single_response", "tie", "low_agreement", "unanimous")
"""Why a prompt got no pseudo-label, in the order they are checked (the first that applies wins)."""

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass
class GroupVote:
    """The outcome of one prompt's vote.

    ``rewards`` covers the first ``n_train`` responses (all when None); ``answers`` covers every
    response. ``vote_share`` is the winner's votes / the share's denominator (``n_valid`` or
    ``n_voters``, see ``VoteConfig.share_of``; also set for skipped prompts: the largest class's
    share, 0 when nothing was valid).
    """

    pseudo_label: str | None
    vote_share: float
    n_valid: int
    skip_reason: str | None
    rewards: list[float]
    classes: dict[str, int] = field(default_factory=dict)
    """Class representative (canonical answer) -> votes, most votes first."""
    answers: list[str | None] = field(default_factory=list)
    """Canonical answer of every response, None when unparsable."""
    unanimous: bool = False
    """Every voting response is valid and in one class (so every reward is equal)."""
    n_voters: int = 0
    """Responses that voted (the first ``n_votes``), valid or not."""
    symbolic_complete: bool = True
    """False when some pair of answers could not be compared (unsafe to parse, out of time, over
    the pair cap) and was counted as different: counted and listed in the vote's manifest stats."""


def vote_group(
    answers: Sequence[str | None], config: VoteConfig, batch: SymbolicBudget | None = None
) -> GroupVote:
    """Vote on one prompt's extracted answers (raw or canonical, in response order; None = unparsable).

    Skip rules, checked in this order: no valid vote -> ``no_valid_answer``; fewer than
    ``min_valid`` -> ``few_valid``; one voter -> ``single_response``; the two largest classes have equal votes -> ``tie``; winner share below
    ``min_vote_ratio`` -> ``low_agreement``; all voters agree and ``skip_unanimous`` ->
    ``unanimous``. A skipped prompt has no pseudo-label and every reward is 0 (also for
    unparsable responses): it carries no training signal. ``batch`` caps the math-verify time of
    all the prompts voted with it (``VoteConfig.max_batch_symbolic_seconds``).

    >>> cfg = VoteConfig()
    >>> v = vote_group(["0.5", r"\\frac{1}{2}", "1/3", None], cfg)
    >>> v.pseudo_label, round(v.vote_share, 3), v.n_valid, v.rewards
    ('0.5', 0.667, 3, [1.0, 1.0, 0.0, 0.0])
    >>> vote_group(["0.5", r"\\frac{1}{2}", "1/3", None], VoteConfig(share_of="all")).vote_share
    0.5
    >>> vote_group(["1", "2"], cfg).skip_reason
    'tie'
    """
    if not answers:
        raise ValueError("vote_group needs at least one response")
    canonical = [_canonical_or_none(answer) for answer in answers]
    n_voters = min(len(canonical), config.n_votes or len(canonical))
    n_rewarded = min(len(canonical), config.n_train or len(canonical))

    # 1. one vote per equivalence key, in order of first appearance
    key_votes: Counter[str] = Counter()
    key_repr: dict[str, str] = {}
    for answer in canonical[:n_voters]:
        if answer is not None:
            key = equivalence_key(answer)
            key_votes[key] += 1
            key_repr.setdefault(key, answer)
    # 2. merge keys that are equivalent after all (largest first, so the budget goes where it matters)
    order = {key: i for i, key in enumerate(key_repr)}
    ranked_keys = sorted(key_votes, key=lambda k: (-key_votes[k], order[k]))
    rewarded_only = [
        a for a in canonical[n_voters:n_rewarded] if a is not None and equivalence_key(a) not in key_repr
    ]
    equivalent = _Equivalence([key_repr[key] for key in ranked_keys] + rewarded_only, config, batch)
    class_of_key: dict[str, int] = {}
    reps: list[str] = []
    votes: list[int] = []
    for key in ranked_keys:
        target = equivalent.first_class(key_repr[key], reps)
        if target is None:
            reps.append(key_repr[key])
            votes.append(0)
            target = len(reps) - 1
        class_of_key[key] = target
        votes[target] += key_votes[key]

    ranking = sorted(range(len(reps)), key=lambda c: (-votes[c], c))
    classes = {reps[c]: votes[c] for c in ranking}
    n_valid = sum(votes)
    unanimous = len(reps) == 1 and n_valid == n_voters
    denominator = n_valid if config.share_of == "valid" else n_voters
    top = votes[ranking[0]] if ranking else 0
    vote_share = top / denominator if denominator else 0.0

    skip_reason = None
    if n_valid == 0:
        skip_reason = "no_valid_answer"
    elif n_valid < config.min_valid:
        skip_reason = "few_valid"
    elif denominator == 1:
        skip_reason = "single_response"
    elif len(ranking) > 1 and votes[ranking[1]] == top:
        skip_reason = "tie"
    elif vote_share < config.min_vote_ratio:
        skip_reason = "low_agreement"
    elif unanimous and config.skip_unanimous:
        skip_reason = "unanimous"

    if skip_reason is not None:
        rewards = [0.0] * n_rewarded
        pseudo_label = None
    else:
        winner = ranking[0]
        pseudo_label = reps[winner]
        rewards = []
        for answer in canonical[:n_rewarded]:
            if answer is None:
                rewards.append(config.unparsable_reward)
                continue
            key = equivalence_key(answer)
            cls = class_of_key[key] if key in class_of_key else equivalent.first_class(answer, reps)
            if config.reward == "binary":
                rewards.append(1.0 if cls == winner else 0.0)
            else:
                rewards.append(votes[cls] / denominator if cls is not None else 0.0)
    return GroupVote(
        pseudo_label=pseudo_label,
        vote_share=vote_share,
        n_valid=n_valid,
        skip_reason=skip_reason,
        rewards=rewards,
        classes=classes,
        answers=canonical,
        unanimous=unanimous,
        n_voters=n_voters,
        symbolic_complete=equivalent.complete,
    )


def _canonical_or_none(answer: str | None) -> str | None:
    if answer is None:
        return None
    canonical = canonical_answer(answer)
    return canonical or None


class _Equivalence:
    """Which of a prompt's distinct answers are equivalent: fast rules, then one symbolic request.

    Every pair the fast rules leave open is sent to math-verify at once (up to
    ``max_symbolic_pairs``, most-voted answers first, within ``max_symbolic_seconds``); merging
    then only looks verdicts up. An answer is never compared with itself twice.
    """

    def __init__(self, answers: list[str], config: VoteConfig, batch: SymbolicBudget | None) -> None:
        self.exact_only = config.max_symbolic_pairs == 0
        self.known: dict[tuple[str, str], bool | None] = {}
        open_pairs: list[tuple[str, str]] = []
        capped = False
        for later, answer in enumerate(answers):
            for earlier in answers[:later]:
                if self.exact_only:
                    break
                verdict = self.known[(answer, earlier)] = fast_verdict(answer, earlier)
                if verdict is None:
                    if len(open_pairs) >= config.max_symbolic_pairs:
                        capped = True
                        break
                    open_pairs.append(symbolic_pair(answer, earlier))
        self.verdicts, decided = decide_pairs(open_pairs, config.max_symbolic_seconds, batch)
        self.complete = decided and not capped
        """False when some pair was left undecided (refused, out of time or over the cap): not equal."""

    def same(self, a: str, b: str) -> bool:
        if self.exact_only:
            return equivalence_key(a) == equivalence_key(b)
        verdict = self.known[(a, b)] if (a, b) in self.known else fast_verdict(a, b)
        if verdict is not None:
            return verdict
        return self.verdicts.get(symbolic_pair(a, b), False)

    def first_class(self, answer: str, reps: list[str]) -> int | None:
        """Index of the first class whose representative is equivalent to ``answer``, else None."""
        for index, rep in enumerate(reps):
            if self.same(answer, rep):
                return index
        return None


# ============================================================================ tables
def vote_rollouts(rollouts: pa.Table, config: VoteConfig) -> tuple[pa.Table, pa.Table]:
    """Vote every prompt of a rollouts table; returns ``(labels, rewards)`` (LABELS, REWARDS schemas).

    ``rollouts`` needs ``prompt_id`` and ``response``; ``response_index`` is optional (default:
    order of appearance within the prompt). Rows may come in any order: responses are grouped
    by ``prompt_id`` and sorted by ``response_index``. Output is sorted by prompt_id, then
    response_index, so shuffled input gives identical tables.
    """
    labels, rewards, _ = _vote_table(rollouts, config, source="rollouts table")
    return labels, rewards


def _vote_table(
    rollouts: pa.Table, config: VoteConfig, source: str
) -> tuple[pa.Table, pa.Table, list[GroupVote]]:
    groups = _group_rows(rollouts, source)
    label_rows: dict[str, list[Any]] = {name: [] for name in LABELS.names}
    reward_rows: dict[str, list[Any]] = {name: [] for name in REWARDS.names}
    outcomes = []
    batch = SymbolicBudget(config.max_batch_symbolic_seconds)
    for prompt_id in sorted(groups):
        members = groups[prompt_id]
        result = vote_group([extract_answer(response) for _, response in members], config, batch)
        outcomes.append(result)
        label_rows["prompt_id"].append(prompt_id)
        label_rows["pseudo_label"].append(result.pseudo_label)
        label_rows["vote_share"].append(result.vote_share)
        label_rows["n_valid"].append(result.n_valid)
        label_rows["skip_reason"].append(result.skip_reason)
        for (index, _), answer, reward in zip(members, result.answers, result.rewards, strict=False):
            reward_rows["prompt_id"].append(prompt_id)
            reward_rows["response_index"].append(index)
            reward_rows["answer"].append(answer)
            reward_rows["reward"].append(reward)
    labels = pa.Table.from_pydict(label_rows, schema=LABELS)
    rewards = pa.Table.from_pydict(reward_rows, schema=REWARDS)
    return labels, rewards, outcomes


def _group_rows(rollouts: pa.Table, source: str) -> dict[str, list[tuple[int, str]]]:
    """``prompt_id -> [(response_index, response)]`` sorted by index; errors name the row."""
    missing = [name for name in ("prompt_id", "response") if name not in rollouts.column_names]
    if missing:
        raise InputDataError(
            f"{source}: missing column(s) {missing} (found {rollouts.column_names}); "
            "each rollout row needs prompt_id and response"
        )
    prompt_ids = rollouts.column("prompt_id").to_pylist()
    responses = rollouts.column("response").to_pylist()
    has_index = "response_index" in rollouts.column_names
    indices = rollouts.column("response_index").to_pylist() if has_index else None
    groups: dict[str, list[tuple[int, str]]] = {}
    for row, (prompt_id, response) in enumerate(zip(prompt_ids, responses, strict=True)):
        if prompt_id is None or isinstance(prompt_id, bool) or not isinstance(prompt_id, str | int):
            raise InputDataError(
                f"{source}: row {row} (0-based): prompt_id must be a string or integer, got {prompt_id!r}"
            )
        if not isinstance(response, str):
            raise InputDataError(
                f"{source}: row {row} (0-based): response must be a string, got {type(response).__name__} "
                '(an empty generation is the string "")'
            )
        key = str(prompt_id)
        members = groups.setdefault(key, [])
        if indices is None:
            index = len(members)
        else:
            index = indices[row]
            if index is None or isinstance(index, bool) or not isinstance(index, int):
                raise InputDataError(
                    f"{source}: row {row} (0-based): response_index must be an integer, got {index!r}"
                )
        members.append((index, response))
    for prompt_id, members in groups.items():
        members.sort(key=lambda item: item[0])
        for (first, _), (second, _) in zip(members, members[1:], strict=False):
            if first == second:
                raise InputDataError(
                    f"{source}: prompt_id {prompt_id!r} has response_index {first} twice; "
                    "each response of a prompt needs its own index"
                )
    return groups


# ============================================================================ stage
def read_rollouts(path: Path) -> pa.Table:
    """Read rollouts from Parquet or JSON Lines; InputDataError names the file and row."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: rollouts file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = read_user_parquet(path)
    elif suffix in JSONL_SUFFIXES:
        table = _read_jsonl(path)
    else:
        raise InputDataError(f"{path}: unsupported rollouts format {suffix!r}; use .parquet or .jsonl")
    if table.num_rows == 0:
        raise InputDataError(f"{path}: no rollouts (the file has no rows)")
    for name in ("prompt_id", "response"):
        if name not in table.column_names:
            raise InputDataError(
                f"{path}: missing column {name!r} (found {table.column_names}); "
                "each rollout row needs prompt_id and response"
            )
    return table


def _read_jsonl(path: Path) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json_loads(line, f"{path}:{line_no}")
        except json.JSONDecodeError as err:
            raise InputDataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise InputDataError(
                f"{path}:{line_no}: each line must be a JSON object, got {type(row).__name__}"
            )
        for name in ("prompt_id", "response"):
            if name not in row:
                raise InputDataError(
                    f"{path}:{line_no}: missing column {name!r}; each rollout row needs prompt_id and response"
                )
        rows.append(row)
    if not rows:
        return pa.table({"prompt_id": pa.array([], pa.string()), "response": pa.array([], pa.string())})
    columns: dict[str, list[Any]] = {
        "prompt_id": [row["prompt_id"] for row in rows],
        "response": [row["response"] for row in rows],
    }
    with_index = ["response_index" in row for row in rows]
    if any(with_index):
        if not all(with_index):
            line = with_index.index(False) + 1
            raise InputDataError(
                f"{path}: response_index is set on some rows but not on row {line}; set it on all rows or none"
            )
        columns["response_index"] = [row["response_index"] for row in rows]
    try:
        return pa.table(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InputDataError(f"{path}: inconsistent column types ({err})") from None


def vote_stats(outcomes: Sequence[GroupVote]) -> dict[str, Any]:
    """Summary numbers of a vote (stored in the manifest, printed by the CLI)."""
    n = len(outcomes)
    reasons = Counter(result.skip_reason for result in outcomes if result.skip_reason)
    rewards = [reward for result in outcomes for reward in result.rewards]
    voters = sum(result.n_voters for result in outcomes)
    return {
        "n_prompts": n,
        "n_responses": sum(len(result.answers) for result in outcomes),
        "n_labelled": n - sum(reasons.values()),
        "n_skipped": sum(reasons.values()),
        "skipped": {reason: reasons.get(reason, 0) for reason in SKIP_REASONS},
        "mean_vote_share": sum(r.vote_share for r in outcomes) / n if n else 0.0,
        "unanimous_share": sum(r.unanimous for r in outcomes) / n if n else 0.0,
        "valid_share": sum(r.n_valid for r in outcomes) / voters if voters else 0.0,
        "mean_reward": sum(rewards) / len(rewards) if rewards else 0.0,
        "n_symbolic_incomplete": sum(not r.symbolic_complete for r in outcomes),
    }


INCOMPLETE_LISTED = 20
"""How many prompt ids with undecided comparisons the manifest lists (all are counted)."""


def run_vote(rollouts_path: Path, out_dir: Path, config: VoteConfig) -> Manifest:
    """Vote a rollouts file and write an artifact with tables ``labels`` and ``rewards``."""
    rollouts_path = Path(rollouts_path)
    check_output_dir(out_dir, "vote", inputs=(rollouts_path,))
    table = read_rollouts(rollouts_path)
    timeouts_before = symbolic_timeouts()
    labels, rewards, outcomes = _vote_table(table, config, source=str(rollouts_path))
    stats = vote_stats(outcomes)
    stats["symbolic_timeouts"] = symbolic_timeouts() - timeouts_before
    prompt_ids = labels.column("prompt_id").to_pylist()
    stats["symbolic_incomplete_prompts"] = [
        pid for pid, result in zip(prompt_ids, outcomes, strict=True) if not result.symbolic_complete
    ][:INCOMPLETE_LISTED]
    logger.info(
        "vote: %d prompts, %d labelled, skipped %s, mean vote share %.3f",
        stats["n_prompts"],
        stats["n_labelled"],
        stats["skipped"],
        stats["mean_vote_share"],
    )
    return write_artifact(
        out_dir,
        "vote",
        {"labels": labels, "rewards": rewards},
        config=config,
        inputs={"rollouts": file_sha256(rollouts_path)},
        stats=stats,
    )
