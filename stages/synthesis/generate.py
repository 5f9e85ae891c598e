"""The work of one shard: samples in, synthetic questions + rejects + counts out.

Pure with respect to its inputs: given the same engine (weights, backend, batch size), rows,
config and seed it produces the same tables, whether it runs in this process or on a Ray actor.
Every engine call gets its own seed derived from the shard seed, so the three phases (context
answers, candidates, answerability) never reuse one random stream.

Phases:
1. in-context answers: the oracle answer when present and allowed, else the model's majority
   answer over ``answer_samples`` reasoning samples (``vote_group``); a sample with neither gets no
   in-context question (reject ``no_context_answer``);
2. candidates: ``n_candidates`` replies per sample and strategy, parsed strictly and filtered;
3. answerability (optional): ``answerability.n`` reasoning samples per surviving question.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mmupt.answers import extract_answer
from mmupt.engine.base import Engine, GenerationRequest
from schemas.artifacts import REJECTS, SYNTHETIC
from schemas.engine import SamplingParams
from schemas.synthesize import AnswerabilityConfig, Strategy, SynthesizeConfig
from schemas.vote import VoteConfig
from stages.ingest.rows import row_id
from stages.synthesis.filters import Answerability, Deduplicator, answerability, text_reason
from stages.synthesis.parse import ParseFailure, parse_reply
from stages.synthesis.prompts import PROMPT_VERSION, direct_messages, in_context_messages
from stages.vote import vote_group

PARENT_REASONS: dict[str, str] = {
    "no_image": "the sample has no image, so there is nothing to ask about",
    "no_context_answer": "in-context: no oracle answer and the model's own answers did not agree",
}


@dataclass
class Tally:
    """Counts of one shard (or of the whole run, by ``merge``); JSON-friendly via ``to_dict``."""

    candidates: Counter[str] = field(default_factory=Counter)  # strategy -> n
    kept: Counter[str] = field(default_factory=Counter)  # strategy -> n
    drops: dict[str, Counter[str]] = field(default_factory=dict)  # strategy -> reason -> n
    parents: int = 0
    parents_skipped: Counter[str] = field(default_factory=Counter)  # reason -> n
    context_answers: Counter[str] = field(default_factory=Counter)  # oracle | majority | none

    def drop(self, strategy: str, reason: str) -> None:
        self.drops.setdefault(strategy, Counter())[reason] += 1

    def merge(self, other: Tally) -> None:
        self.candidates.update(other.candidates)
        self.kept.update(other.kept)
        for strategy, reasons in other.drops.items():
            self.drops.setdefault(strategy, Counter()).update(reasons)
        self.parents += other.parents
        self.parents_skipped.update(other.parents_skipped)
        self.context_answers.update(other.context_answers)

    def check(self) -> None:
        for strategy, n in self.candidates.items():
            dropped = sum(self.drops.get(strategy, Counter()).values())
            if n != self.kept[strategy] + dropped:  # a bug, never a user error
                raise AssertionError(f"synthesis accounting broken for {strategy}: {self.to_dict()}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": dict(self.candidates),
            "kept": dict(self.kept),
            "drops": {s: dict(r) for s, r in self.drops.items()},
            "parents": self.parents,
            "parents_skipped": dict(self.parents_skipped),
            "context_answers": dict(self.context_answers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(
            candidates=Counter(data["candidates"]),
            kept=Counter(data["kept"]),
            drops={s: Counter(r) for s, r in data["drops"].items()},
            parents=int(data["parents"]),
            parents_skipped=Counter(data["parents_skipped"]),
            context_answers=Counter(data["context_answers"]),
        )


@dataclass
class ShardResult:
    synthetic: pa.Table
    rejects: pa.Table
    tally: Tally


@dataclass
class _Candidate:
    candidate_id: str
    parent: dict[str, Any]
    strategy: Strategy
    question: str
    proposed_answer: str | None
    context_source: str | None
    self_answer: str | None = None
    self_vote_share: float | None = None


def synthesize_shard(
    engine: Engine, rows: Sequence[dict[str, Any]], config: SynthesizeConfig, seed: int, model_id: str
) -> ShardResult:
    """Write, parse and filter candidate questions for ``rows`` (SAMPLES rows as dicts)."""
    tally = Tally(parents=len(rows))
    rejects: list[dict[str, Any]] = []

    def reject(row: str, parent: str, reason: str, detail: str, strategy: str | None) -> None:
        rejects.append({"row": row, "source": parent, "reason": reason, "detail": detail})
        if strategy is None:
            tally.parents_skipped[reason] += 1
        else:
            tally.drop(strategy, reason)

    parents = []
    for row in rows:
        if not row["images"]:
            reject(row["id"], row["id"], "no_image", PARENT_REASONS["no_image"], None)
        else:
            parents.append(row)

    contexts = _context_answers(engine, parents, config, seed) if "in-context" in config.strategies else {}
    requests: list[GenerationRequest] = []
    meta: list[tuple[dict[str, Any], Strategy, str | None]] = []
    for row in parents:
        images = list(row["images"])
        for strategy in config.strategies:
            if strategy == "in-context":
                answer, source, detail = contexts[row["id"]]
                tally.context_answers[source or "none"] += 1
                if answer is None:
                    reject(f"{row['id']}:{strategy}", row["id"], "no_context_answer", detail, None)
                    continue
                messages = in_context_messages(row["problem"], answer, len(images))
            else:
                source, messages = None, direct_messages(len(images))
            requests.append(GenerationRequest(f"{row['id']}:{strategy}", "", images, messages=messages))
            meta.append((row, strategy, source))

    sampling = SamplingParams(
        n=config.n_candidates,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=seed + 1,
    )
    outputs = engine.generate(requests, sampling) if requests else []
    dedup = Deduplicator()
    survivors: list[_Candidate] = []
    for request, (row, strategy, source), completions in zip(requests, meta, outputs, strict=True):
        for k, completion in enumerate(completions):
            cid = f"{request.request_id}:{k}"
            tally.candidates[strategy] += 1
            parsed = parse_reply(completion.text, completion.finish_reason)
            if isinstance(parsed, ParseFailure):
                reject(cid, row["id"], parsed.reason, parsed.detail, strategy)
                continue
            found = text_reason(parsed.question, row["problem"], config.filters) or dedup.reason(
                row["images"], parsed.question, cid
            )
            if found is not None:
                reject(cid, row["id"], found[0], found[1], strategy)
                continue
            survivors.append(_Candidate(cid, row, strategy, parsed.question, parsed.proposed_answer, source))

    if config.answerability.enabled and survivors:
        survivors = _answerable(engine, survivors, config, seed + 2, reject)
    for candidate in survivors:
        tally.kept[candidate.strategy] += 1
    tally.check()
    synthetic = pa.Table.from_pylist([_row(c, model_id) for c in survivors], schema=SYNTHETIC)
    return ShardResult(synthetic, pa.Table.from_pylist(rejects, schema=REJECTS), tally)


def _context_answers(
    engine: Engine, rows: list[dict[str, Any]], config: SynthesizeConfig, seed: int
) -> dict[str, tuple[str | None, str | None, str]]:
    """``id -> (answer, source, detail)``: the oracle answer, else the model's agreed majority answer."""
    out: dict[str, tuple[str | None, str | None, str]] = {}
    ask = []
    for row in rows:
        oracle = (row.get("oracle_answer") or "").strip()
        if config.use_oracle_answer and oracle:
            out[row["id"]] = (oracle, "oracle", "")
        else:
            ask.append(row)
    if not ask:
        return out
    sampling = SamplingParams(
        n=config.answer_samples,
        temperature=config.answer_temperature,
        max_new_tokens=config.answer_max_new_tokens,
        seed=seed,
    )
    requests = [GenerationRequest(f"{r['id']}:answer", r["problem"], list(r["images"])) for r in ask]
    vote = VoteConfig(
        min_vote_ratio=config.answer_min_vote_ratio, share_of="all"
    )  # as the answerability filter
    for row, completions in zip(ask, engine.generate(requests, sampling), strict=True):
        result = vote_group([extract_answer(c.text) for c in completions], vote)
        label = result.pseudo_label
        if label is None and result.skip_reason == "single_response":
            label = next(iter(result.classes))  # one sample: its answer is the majority
        if label is None:
            detail = (
                f"model's answers: {result.skip_reason} (vote share {result.vote_share:.2f}, "
                f"{result.n_valid}/{len(completions)} parsable)"
            )
            out[row["id"]] = (None, None, detail)
        else:
            out[row["id"]] = (label, "majority", "")
    return out


def check_answerable(
    engine: Engine, questions: Sequence[tuple[str, Sequence[bytes]]], spec: AnswerabilityConfig, seed: int
) -> list[Answerability]:
    """The model's own vote on each ``(question, images)``: ``spec.n`` reasoning samples each.

    Asked with the standard reasoning prompt, exactly as training will ask, so a kept question is
    one that training can give a pseudo-label.
    """
    sampling = SamplingParams(
        n=spec.n, temperature=spec.temperature, max_new_tokens=spec.max_new_tokens, seed=seed
    )
    requests = [GenerationRequest(f"q{i}", q, list(images)) for i, (q, images) in enumerate(questions)]
    outputs = engine.generate(requests, sampling) if requests else []
    return [
        answerability([extract_answer(c.text) for c in completions], spec.min_vote_ratio)
        for completions in outputs
    ]


def _answerable(
    engine: Engine, survivors: list[_Candidate], config: SynthesizeConfig, seed: int, reject: Any
) -> list[_Candidate]:
    """Keep candidates whose own sampled answers agree (see ``filters.answerability``)."""
    verdicts = check_answerable(
        engine, [(c.question, c.parent["images"]) for c in survivors], config.answerability, seed
    )
    kept = []
    for candidate, verdict in zip(survivors, verdicts, strict=True):
        if not verdict.keep:
            reject(
                candidate.candidate_id,
                candidate.parent["id"],
                "unanswerable",
                verdict.detail,
                candidate.strategy,
            )
            continue
        candidate.self_answer, candidate.self_vote_share = verdict.majority, verdict.vote_share
        kept.append(candidate)
    return kept


def synthetic_problem(parent_problem: str, question: str, n_images: int) -> str:
    """The stored question: ``<image>`` placeholders up front when the parent placed its images so."""
    return "<image>" * n_images + question if "<image>" in parent_problem else question


def _row(candidate: _Candidate, model_id: str) -> dict[str, Any]:
    parent = candidate.parent
    images = list(parent["images"])
    problem = synthetic_problem(parent["problem"], candidate.question, len(images))
    metadata = {
        "candidate": candidate.candidate_id,
        "context_answer_source": candidate.context_source,
        "proposed_answer": candidate.proposed_answer,
    }
    if candidate.self_answer is not None:
        metadata["self_answer"] = candidate.self_answer
        metadata["self_vote_share"] = candidate.self_vote_share
    return {
        "id": row_id(images, problem),
        "images": images,
        "image_widths": list(parent["image_widths"]),
        "image_heights": list(parent["image_heights"]),
        "problem": problem,
        "oracle_answer": None,
        "source": f"synthesize:{candidate.strategy}",
        "metadata": json.dumps(metadata, sort_keys=True),
        "parent_id": parent["id"],
        "strategy": candidate.strategy,
        "prompt_version": PROMPT_VERSION,
        "generator_model": model_id,
    }
