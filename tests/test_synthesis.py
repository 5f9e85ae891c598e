"""Synthesis: strict parsing, every filter, shard jobs (resume, retry, Ray), the stage, the mix.

Models are real: ``writer_model_dir`` is a tiny Qwen2.5-VL trained for a few seconds to reply in
the "Question: ... / Answer: ..." form (noisily, so replies also exercise the rejects), and the
shared ``tiny_model_dir`` has random weights (it writes garbage, so nothing survives).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mmupt.errors import InputDataError, MmuptError, NothingSurvivedError
from mmupt.store import read_manifest, read_table, write_artifact
from schemas.artifacts import SAMPLES, SYNTHETIC
from schemas.synthesize import AnswerabilityConfig, FilterConfig, RayJobConfig, SynthesizeConfig
from stages.synthesis import REASONS, mix_samples, run_synthesize
from stages.synthesis import jobs as jobs_module
from stages.synthesis.filters import (
    Deduplicator,
    answerability,
    copy_reason,
    garbled_reason,
    length_reason,
    options_reason,
    question_reason,
    text_reason,
)
from stages.synthesis.generate import check_answerable, synthesize_shard
from stages.synthesis.mix import mix_counts
from stages.synthesis.parse import Parsed, ParseFailure, parse_reply
from stages.synthesis.prompts import PROMPT_VERSION, direct_messages, in_context_messages
from stages.synthesis.run import SHARDS_DIR
from tests.conftest import TEST_MODEL_SIZES, png

COLORS = ["red", "blue", "green", "yellow", "purple", "orange"]
SMALL = TEST_MODEL_SIZES


# ---------------------------------------------------------------------------- fixtures
def original_problem(color: str) -> str:
    return f"<image>How many {color} dots are in the image?"


def writer_reply(strategy: str, color: str) -> str:
    if strategy == "direct":
        return f"Question: What color is the dot in the image?\nAnswer: {color}"
    return f"Question: Is the dot in the image {color}?\nAnswer: yes"


@pytest.fixture(scope="module")
def writer_model_dir(tmp_path_factory) -> Path:
    """A tiny model taught (60 steps, ~20 s) to answer both synthesis prompts in the marker form."""
    from mmupt.modeling.factory import create_tiny_model
    from mmupt.modeling.inputs import prompt_text, training_batch
    from mmupt.modeling.loader import load_model_and_processor
    from schemas.model import TinyModelConfig

    out = tmp_path_factory.mktemp("writer-model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the cores are shared: more threads than free cores is much slower
    prompts = {c: in_context_messages(original_problem(c), "1", 1) for c in COLORS}
    texts = [m[0]["content"][-1]["text"] for m in prompts.values()] + [
        direct_messages(1)[0]["content"][-1]["text"]
    ]
    texts += [writer_reply(s, c) for s in ("direct", "in-context") for c in COLORS]
    create_tiny_model(TinyModelConfig(**SMALL), texts * 20, out)
    torch.manual_seed(0)
    model, processor = load_model_and_processor(out)
    end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    records = []
    for color in COLORS:
        for strategy, messages in (("in-context", prompts[color]), ("direct", direct_messages(1))):
            target = processor.tokenizer(writer_reply(strategy, color), add_special_tokens=False)["input_ids"]
            records.append(
                (prompt_text(processor, "", 1, messages), [png(dot=color, size=56)], target + [end])
            )
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    model.train()
    for _ in range(60):
        batch = training_batch(processor, *map(list, zip(*records, strict=True)))
        batch.pop("response_mask")
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(out)
    torch.set_num_threads(threads)
    return out


def samples_table(n: int = 6, with_images: bool = True, oracle: bool = True, label: str = "1") -> pa.Table:
    rows = []
    for i in range(n):
        color = COLORS[i % len(COLORS)]
        images = [png(dot=color, size=56 + 4 * (i // len(COLORS)))] if with_images else []
        rows.append(
            {
                "id": f"s{i:03d}",
                "images": images,
                "image_widths": [56] * len(images),
                "image_heights": [56] * len(images),
                "problem": original_problem(color),
                "oracle_answer": label if oracle else None,
                "source": "test",
                "metadata": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=SAMPLES)


def samples_artifact(path: Path, table: pa.Table) -> Path:
    write_artifact(path, "ingest", {"samples": table})
    return path


def fast_config(**overrides) -> SynthesizeConfig:
    base = dict(n_candidates=3, max_new_tokens=40, temperature=0.8, shard_size=2, answer_max_new_tokens=24)
    base.update(overrides)
    return SynthesizeConfig(**base)


@pytest.fixture
def one_thread():
    """Same torch thread count as the Ray actors, so float reductions (and samples) are identical."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- parsing
def test_parse_accepts_marker_forms():
    assert parse_reply("Question: How many dots?\nAnswer: 3") == Parsed("How many dots?", "3")
    assert parse_reply("**Question:** What color is it?\n**Answer:** red") == Parsed(
        "What color is it?", "red"
    )
    preamble = "Sure, here is one.\nQuestion: Which shape is largest?\nAnswer: (B)"
    assert parse_reply(preamble) == Parsed("Which shape is largest?", "(B)")
    multi = "Question: Which color is the dot?\n(A) red\n(B) blue\nAnswer: A"
    assert parse_reply(multi) == Parsed("Which color is the dot?\n(A) red\n(B) blue", "A")
    # lines run together: the inline Answer marker still ends the question
    assert parse_reply("Question: Is the dot red?Answer: yes") == Parsed("Is the dot red?", "yes")
    # no Answer line but a natural stop: fine; placeholders and special tokens are removed
    assert parse_reply("question:  <image>How many   dots?<|im_end|>") == Parsed("How many dots?", None)


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "empty"),
        ("   \n ", "stop", "empty"),
        ("Question:   \nAnswer: 3", "stop", "empty"),
        ("I count the dots: 3. \\boxed{3}", "stop", "no_marker"),
        ("The question: how many?", "stop", "no_marker"),  # marker must open a line
        (
            "Question: How many dots?\nAnswer: 3\nQuestion: What color?\nAnswer: red",
            "stop",
            "multiple_questions",
        ),
        ("Question: How many dots? What color are they?\nAnswer: 3", "stop", "multiple_questions"),
        ("Question: How many dots? Question: what color?", "stop", "multiple_questions"),
        ("Question: How many dots are the", "length", "truncated"),
    ],
)
def test_parse_refuses_junk(text, finish, reason):
    result = parse_reply(text, finish)
    assert isinstance(result, ParseFailure)
    assert result.reason == reason
    assert result.reason in REASONS


def test_parse_question_mark_in_options_is_one_question():
    text = "Question: Which is bigger?\n(A) 3?\n(B) 5\nAnswer: B"
    assert isinstance(parse_reply(text), Parsed)
    # a truncated reply whose Answer line was reached is complete
    assert isinstance(parse_reply("Question: How many dots?\nAnswer: 12345", "length"), Parsed)


# ---------------------------------------------------------------------------- filters
FILTERS = FilterConfig(min_chars=10, max_chars=80, min_words=3, max_words=15, copy_similarity=0.9)


def test_length_filter():
    assert length_reason("How many dots are there?", FILTERS) is None
    assert length_reason("Why?", FILTERS)[0] == "too_short"
    assert length_reason("Tiny question?", FILTERS)[0] == "too_short"  # 14 chars but 2 words
    assert length_reason("word " * 16 + "?", FILTERS)[0] == "too_long"  # 16 words
    assert length_reason("x" * 60 + " y " + "z" * 30, FILTERS)[0] == "too_long"  # 93 chars


def test_garbled_filter():
    assert garbled_reason("How many dots are there?\n(A) 1\t(B) 2") is None
    assert garbled_reason("Wie viele Punkte gibt es? Café, 三角形?") is None  # any readable script
    assert garbled_reason("Is the dot in the image pu\ufffd\ufffd this?")[0] == "garbled"
    assert garbled_reason("Is the dot\x00 red?")[0] == "garbled"
    assert text_reason("Is the dot\x1b red here?", "x", FILTERS)[0] == "garbled"


def test_question_filter():
    assert question_reason("The dot is red, isn't it?") is None
    assert question_reason("How many dots are there") is None  # interrogative opener
    assert question_reason("Count the red circles.") is None  # task verb
    assert question_reason('"Which shape is largest"') is None  # quotes before the opener
    reason = question_reason("The image shows three dots.")
    assert reason is not None and reason[0] == "not_question"
    assert question_reason("I think the answer is 3.")[0] == "not_question"


def test_copy_filter():
    original = "<image>How many red dots are in the image?"
    assert copy_reason("How many red dots are in the image?", original, FILTERS)[0] == "copy"
    assert copy_reason("how many RED dots are in the image", original, FILTERS)[0] == "copy"  # case/punct
    assert copy_reason("How many red dots are in this image?", original, FILTERS)[0] == "copy"  # near-copy
    assert copy_reason("What color is the largest dot?", original, FILTERS) is None
    loose = FilterConfig(copy_similarity=1.0)
    assert copy_reason("How many red dots are in this image?", original, loose) is None


def test_missing_options_filter():
    assert options_reason("Which color is the dot? (A) red (B) blue") is None
    assert options_reason("Which color is the dot?\nA. red\nB. blue\nC. green") is None
    assert options_reason("How many dots are there?") is None  # no reference to options
    for question in (
        "Which of the following is the color of the dot?",
        "Is the answer (A) or (B)?",
        "Pick the right option: how many dots?",
        "Which color is the dot? Choices: (A) red",  # a single option is not a listing
    ):
        reason = options_reason(question)
        assert reason is not None and reason[0] == "missing_options", question


def test_text_filters_report_first_reason():
    assert text_reason("How many blue dots are there?", "<image>How many red dots?", FILTERS) is None
    assert text_reason("Hi?", "x", FILTERS)[0] == "too_short"
    assert (
        text_reason("Which of the following is the dot color?", "How many?", FILTERS)[0] == "missing_options"
    )


def test_duplicate_filter_keeps_first_per_image():
    dedup = Deduplicator()
    red, blue = png(dot="red"), png(dot="blue")
    assert dedup.reason([red], "How many dots?", "a:direct:0") is None
    reason = dedup.reason([red], "how many  dots", "a:direct:1")
    assert reason == ("duplicate", "same question as a:direct:0")
    assert dedup.reason([blue], "How many dots?", "b:direct:0") is None  # another image
    assert dedup.reason([red], "How many dots?", "a:direct:0") is None  # the first itself


def test_answerability_agreement_logic():
    agree = answerability(["3", "3", r"\boxed{3}", "4"], 0.5)
    assert agree.keep and agree.majority == "3" and agree.vote_share == 0.75
    assert answerability(["0.5", r"\frac{1}{2}", "1/2", "7"], 0.75).keep  # equivalent forms vote together
    weak = answerability(["3", "3", "4", "5"], 0.75)
    assert not weak.keep and weak.detail.startswith("low_agreement")
    assert answerability(["3", "4", "3", "4"], 0.0).detail.startswith("tie")
    assert answerability([None, None, None, "3"], 0.5).detail.startswith("low_agreement")
    assert answerability([None, None], 0.5).detail.startswith("no_valid_answer")


def test_answerability_filter_drops_garbage_answers(tiny_model_dir):
    """A random-weight model never agrees with itself on a real question: every question is dropped."""
    from mmupt.engine.hf import HFEngine

    engine = HFEngine.from_pretrained(tiny_model_dir)
    spec = AnswerabilityConfig(enabled=True, n=4, min_vote_ratio=0.5, max_new_tokens=24)
    questions = [(f"How many {c} dots are in the image?", [png(dot=c, size=56)]) for c in COLORS[:3]]
    verdicts = check_answerable(engine, questions, spec, seed=0)
    assert [v.keep for v in verdicts] == [False, False, False]
    assert all(v.detail.split(":")[0] in {"no_valid_answer", "low_agreement", "tie"} for v in verdicts)


def test_shard_answerability_reasons_and_accounting(writer_model_dir, one_thread):
    from mmupt.engine.hf import HFEngine

    engine = HFEngine.from_pretrained(writer_model_dir)
    config = fast_config(
        answerability=AnswerabilityConfig(enabled=True, n=4, min_vote_ratio=1.0, max_new_tokens=24)
    )
    result = synthesize_shard(engine, samples_table(4).to_pylist(), config, seed=3, model_id="writer")
    reasons = Counter(result.rejects.column("reason").to_pylist())
    assert reasons["unanswerable"] > 0  # questions did reach the filter, and it dropped some
    assert set(reasons) <= set(REASONS)
    tally = result.tally
    assert sum(tally.candidates.values()) == 4 * 2 * 3
    assert sum(tally.kept.values()) == result.synthetic.num_rows
    for meta in result.synthetic.column("metadata").to_pylist():
        assert json.loads(meta)["self_vote_share"] == 1.0  # min_vote_ratio 1.0: only unanimous survive


def test_in_context_without_oracle_uses_models_majority(tiny_model_dir):
    """No oracle answer and a model that never agrees: no in-context prompt is written, direct still is."""
    from mmupt.engine.hf import HFEngine

    engine = HFEngine.from_pretrained(tiny_model_dir)
    config = fast_config(n_candidates=2, max_new_tokens=16)
    rows = samples_table(3, oracle=False).to_pylist()
    result = synthesize_shard(engine, rows, config, seed=0, model_id="tiny")
    assert result.tally.context_answers == Counter({"none": 3})
    assert result.tally.parents_skipped == Counter({"no_context_answer": 3})
    assert result.tally.candidates == Counter({"direct": 6})
    skipped = [r for r in result.rejects.to_pylist() if r["reason"] == "no_context_answer"]
    assert [r["row"] for r in skipped] == ["s000:in-context", "s001:in-context", "s002:in-context"]
    # with the oracle allowed, every sample gets its in-context prompt
    with_oracle = synthesize_shard(engine, samples_table(3).to_pylist(), config, seed=0, model_id="tiny")
    assert with_oracle.tally.context_answers == Counter({"oracle": 3})
    assert with_oracle.tally.candidates == Counter({"direct": 6, "in-context": 6})


# ---------------------------------------------------------------------------- the stage and its jobs
def shard_times(out: Path) -> dict[str, float]:
    return {p.name: read_manifest(p).created_at for p in sorted((out / SHARDS_DIR).iterdir())}


def test_stage_output_and_sharded_resume(tmp_path, writer_model_dir, one_thread):
    samples = samples_artifact(tmp_path / "samples", samples_table(6))
    out = tmp_path / "synth"
    config = fast_config()
    manifest = run_synthesize(samples, writer_model_dir, out, config)
    synthetic = read_table(out, "synthetic")
    rejects = read_table(out, "rejects")
    stats = manifest.stats
    assert synthetic.num_rows == stats["kept"] > 0
    assert stats["candidates"] == 6 * 2 * 3 == stats["kept"] + sum(stats["drops"].values())
    assert rejects.num_rows == sum(stats["drops"].values())
    assert set(stats["by_strategy"]) == {"in-context", "direct"}
    for row in stats["by_strategy"].values():
        assert row["survival_rate"] == pytest.approx(row["kept"] / row["candidates"])
    assert stats["shards"] == {"total": 3, "resumed": 0, "ran": 3}
    # rows: provenance, copied images, no oracle, content ids, no duplicates
    parents = {r["id"]: r for r in samples_table(6).to_pylist()}
    for row in synthetic.to_pylist():
        parent = parents[row["parent_id"]]
        assert row["images"] == parent["images"] and row["oracle_answer"] is None
        assert row["problem"].startswith("<image>") and row["problem"] != parent["problem"]
        assert row["prompt_version"] == PROMPT_VERSION and row["generator_model"] == str(writer_model_dir)
        assert (
            row["strategy"] in ("in-context", "direct") and row["source"] == f"synthesize:{row['strategy']}"
        )
    assert len(set(synthetic.column("id").to_pylist())) == synthetic.num_rows
    assert sorted(read_manifest(out).tables) == ["rejects", "synthetic"]  # shards are not tables

    # resume: delete one finished shard, re-run, only that one is generated again
    before = shard_times(out)
    assert len(before) == 3
    victim = sorted(before)[1]
    shutil.rmtree(out / SHARDS_DIR / victim)
    again = run_synthesize(samples, writer_model_dir, out, config)
    after = shard_times(out)
    assert again.stats["shards"] == {"total": 3, "resumed": 2, "ran": 1}
    assert after[victim] > before[victim]
    assert {k: v for k, v in after.items() if k != victim} == {k: v for k, v in before.items() if k != victim}
    assert read_table(out, "synthetic").equals(synthetic)  # same seed, same rows

    # a changed setting changes every shard id: nothing stale is reused
    changed = run_synthesize(samples, writer_model_dir, out, fast_config(seed=1))
    assert changed.stats["shards"]["resumed"] == 0
    assert set(shard_times(out)).isdisjoint(before)


def test_crashed_shard_is_retried_then_reported(tmp_path, writer_model_dir, monkeypatch):
    samples = samples_artifact(tmp_path / "samples", samples_table(4))
    real = jobs_module.synthesize_shard
    calls: Counter[str] = Counter()

    def flaky(engine, rows, config, seed, model_id):
        calls[rows[0]["id"]] += 1
        if rows[0]["id"] == "s002" and (calls["s002"] == 1 or config.shard_retries == 0):
            raise RuntimeError("simulated worker crash")
        return real(engine, rows, config, seed, model_id)

    monkeypatch.setattr(jobs_module, "synthesize_shard", flaky)
    config = fast_config(strategy="direct", n_candidates=2)
    run_synthesize(samples, writer_model_dir, tmp_path / "ok", config)
    assert calls == Counter({"s000": 1, "s002": 2})  # retried once, then fine

    with pytest.raises(
        MmuptError, match=r"1 shard\(s\) failed after 1 attempt.*00001-.*simulated worker crash"
    ):
        run_synthesize(
            samples, writer_model_dir, tmp_path / "bad", config.model_copy(update={"shard_retries": 0})
        )
    assert not (tmp_path / "bad" / "manifest.json").exists()
    assert len(list((tmp_path / "bad" / SHARDS_DIR).iterdir())) == 1  # the good shard is kept for resume


def test_same_checkpoint_elsewhere_synthesizes_the_same_questions(tmp_path, writer_model_dir, one_thread):
    """A fresh run of a campaign writes its checkpoints at new paths and mtimes; the samples must not change."""
    samples = samples_artifact(tmp_path / "samples", samples_table(6))
    copy = tmp_path / "copied-model"
    shutil.copytree(writer_model_dir, copy)
    first = run_synthesize(samples, writer_model_dir, tmp_path / "a", fast_config())
    second = run_synthesize(samples, copy, tmp_path / "b", fast_config())
    shards_a, shards_b = shard_times(tmp_path / "a"), shard_times(tmp_path / "b")
    assert shards_a.keys().isdisjoint(shards_b)  # a shard is never resumed across checkpoints
    synthetic_a = read_table(tmp_path / "a", "synthetic")
    synthetic_b = read_table(tmp_path / "b", "synthetic")
    same = [c for c in synthetic_a.column_names if c != "generator_model"]
    assert first.stats["kept"] > 0 and second.stats["by_strategy"] == first.stats["by_strategy"]
    assert synthetic_b.select(same).equals(synthetic_a.select(same))
    assert read_table(tmp_path / "b", "rejects").equals(read_table(tmp_path / "a", "rejects"))


def test_label_free_synthesis_ignores_the_hidden_labels(tmp_path, writer_model_dir, one_thread):
    """use_oracle_answer false: wrong hidden labels give the very same questions, rejects and stats."""
    config = fast_config(use_oracle_answer=False)
    right = samples_artifact(tmp_path / "right", samples_table(6))
    wrong = samples_artifact(tmp_path / "wrong", samples_table(6, label="9"))
    a = run_synthesize(right, writer_model_dir, tmp_path / "a", config)
    b = run_synthesize(wrong, writer_model_dir, tmp_path / "b", config)
    assert a.stats["candidates"] > 0
    assert {k: v for k, v in a.stats.items() if k != "seconds"} == {
        k: v for k, v in b.stats.items() if k != "seconds"
    }
    assert read_table(tmp_path / "a", "synthetic").equals(read_table(tmp_path / "b", "synthetic"))
    assert read_table(tmp_path / "a", "rejects").equals(read_table(tmp_path / "b", "rejects"))


@pytest.mark.slow
def test_ray_actors_match_in_process(tmp_path, writer_model_dir, one_thread):
    import ray

    from mmupt.ray_local import start_ray

    samples = samples_artifact(tmp_path / "samples", samples_table(6))
    config = fast_config()
    local = run_synthesize(samples, writer_model_dir, tmp_path / "local", config)
    if ray.is_initialized():  # an earlier test's training job keeps its Ray instance for later rounds
        ray.shutdown()
    start_ray(None, 2, {})
    try:
        remote = run_synthesize(
            samples,
            writer_model_dir,
            tmp_path / "ray",
            config.model_copy(update={"ray": RayJobConfig(enabled=True)}),
        )
    finally:
        ray.shutdown()
    assert remote.config_hash != local.config_hash  # the run did use the Ray settings
    assert read_table(tmp_path / "ray", "synthetic").equals(read_table(tmp_path / "local", "synthetic"))
    assert read_table(tmp_path / "ray", "rejects").equals(read_table(tmp_path / "local", "rejects"))
    assert remote.stats["by_strategy"] == local.stats["by_strategy"]
    assert shard_times(tmp_path / "ray").keys() == shard_times(tmp_path / "local").keys()


def test_nothing_survives_is_an_error(tmp_path, tiny_model_dir):
    samples = samples_artifact(tmp_path / "samples", samples_table(2))
    with pytest.raises(
        NothingSurvivedError, match=r"kept no question: 0 of 8 candidates survived \(drops: .*no_marker"
    ):
        run_synthesize(
            samples, tiny_model_dir, tmp_path / "out", fast_config(n_candidates=2, max_new_tokens=12)
        )
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_samples_without_images_are_refused(tmp_path, tiny_model_dir):
    samples = samples_artifact(tmp_path / "samples", samples_table(3, with_images=False))
    with pytest.raises(InputDataError, match="no sample has an image"):
        run_synthesize(samples, tiny_model_dir, tmp_path / "out", fast_config())
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"id": ["a"], "problem": ["How many?"]}), bare)
    with pytest.raises(InputDataError, match=r"missing column\(s\) \['images'\]"):
        run_synthesize(bare, tiny_model_dir, tmp_path / "out", fast_config())


def test_cli_runs_direct_strategy(tmp_path, writer_model_dir):
    from typer.testing import CliRunner

    import flows.commands.synthesize  # noqa: F401 - registers the command
    from flows.app import app

    samples = samples_artifact(tmp_path / "samples", samples_table(2))
    config = tmp_path / "synth.yaml"
    config.write_text("n_candidates: 2\nmax_new_tokens: 40\ntemperature: 0.8\n")
    args = [
        "synthesize",
        "--samples",
        str(samples),
        "--model",
        str(writer_model_dir),
        "--out",
        str(tmp_path / "o"),
    ]
    result = CliRunner().invoke(app, [*args, "--strategy", "direct", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "direct" in result.output and "in-context" not in result.output
    assert set(read_table(tmp_path / "o", "synthetic").column("strategy").to_pylist()) == {"direct"}
    bad = CliRunner().invoke(app, [*args, "--strategy", "sideways"])
    assert bad.exit_code != 0


# ---------------------------------------------------------------------------- mix
def synthetic_table(n: int) -> pa.Table:
    originals = samples_table(n).to_pylist()
    rows = []
    for i, parent in enumerate(originals):
        rows.append(
            {
                **parent,
                "id": f"syn{i:03d}",
                "problem": f"<image>Question {i}?",
                "oracle_answer": None,
                "metadata": json.dumps({"candidate": f"{parent['id']}:direct:0"}),
                "parent_id": parent["id"],
                "strategy": "direct",
                "prompt_version": PROMPT_VERSION,
                "generator_model": "m",
            }
        )
    return pa.Table.from_pylist(rows, schema=SYNTHETIC)


def test_mix_counts():
    assert mix_counts(10, 10, 0.5) == (10, 10)
    assert mix_counts(10, 4, 0.5) == (4, 4)  # not enough synthetic: originals are subsampled
    assert mix_counts(10, 100, 0.2) == (10, 2)
    assert mix_counts(10, 3, 0.0) == (10, 0)
    assert mix_counts(10, 3, 1.0) == (0, 3)
    with pytest.raises(InputDataError):
        mix_counts(1, 1, 1.5)


def test_mix_samples_ratio_provenance_and_seed():
    original, synthetic = samples_table(12), synthetic_table(12)
    mixed = mix_samples(original, synthetic, 0.25, seed=7)
    assert mixed.schema.equals(SAMPLES)
    sources = Counter("synthetic" in json.loads(m or "{}") for m in mixed.column("metadata").to_pylist())
    assert sources == Counter({False: 12, True: 4})
    provenance = [json.loads(m)["synthetic"] for m in mixed.column("metadata").to_pylist() if m]
    assert all(p["strategy"] == "direct" and p["parent_id"].startswith("s") for p in provenance)
    assert mixed.equals(mix_samples(original, synthetic, 0.25, seed=7))
    assert not mixed.equals(mix_samples(original, synthetic, 0.25, seed=8))
    only = mix_samples(original, synthetic, 1.0, seed=0)
    assert sorted(only.column("id").to_pylist()) == sorted(synthetic.column("id").to_pylist())
    none = mix_samples(original, synthetic, 0.0, seed=0)
    assert sorted(none.column("id").to_pylist()) == sorted(original.column("id").to_pylist())


def test_mix_samples_refuses_impossible_mixes():
    original, synthetic = samples_table(4), synthetic_table(4)
    with pytest.raises(InputDataError, match="asks for synthetic rows but there are none"):
        mix_samples(original, synthetic.slice(0, 0), 0.5)
    with pytest.raises(InputDataError, match="samples table is empty"):
        mix_samples(original.slice(0, 0), synthetic, 0.5)
    # a synthetic row that is an existing original (same id) is not added twice
    clash = synthetic.set_column(0, "id", original.column("id"))
    with pytest.raises(InputDataError, match="none"):
        mix_samples(original, clash, 0.5)


def test_round_windows_give_each_round_new_originals(tmp_path):
    """Consecutive rounds' windows are disjoint until the pool is used up, then they wrap."""
    from schemas.campaign import RoundWindow
    from stages.mix import run_window, window_rows

    windows = [window_rows(10, RoundWindow(index=k, size=4, seed=3)) for k in (1, 2, 3)]
    assert not set(windows[0]) & set(windows[1])
    assert len(set(windows[0]) | set(windows[1])) == 8
    assert set(windows[2]) == (set(range(10)) - set(windows[0]) - set(windows[1])) | set(windows[0][:2])
    assert window_rows(10, RoundWindow(index=1, size=4, seed=3)) == windows[0]  # pure
    assert window_rows(10, RoundWindow(index=1, size=4, seed=4)) != windows[0]
    assert sorted(window_rows(3, RoundWindow(index=1, size=4, seed=3))) == [0, 1, 2]  # never repeats a row

    samples = samples_artifact(tmp_path / "samples", samples_table(10))
    ids = samples_table(10).column("id").to_pylist()
    taken = []
    for k in (1, 2):
        manifest = run_window(samples, RoundWindow(index=k, size=4, seed=3), tmp_path / f"window-{k}")
        rows = read_table(tmp_path / f"window-{k}", "samples").column("id").to_pylist()
        assert rows == [ids[i] for i in windows[k - 1]]
        assert manifest.stats == {"rows": 4, "pool_rows": 10, "window_index": k, "wrapped": False}
        taken.append(set(rows))
    assert not taken[0] & taken[1]
    assert run_window(samples, RoundWindow(index=3, size=4, seed=3), tmp_path / "w3").stats["wrapped"]
