"""The HF engine: n samples per request, reproducible seeds, shared prefix == naive path."""

from __future__ import annotations

import pytest
import torch

from mmupt.engine.base import Engine, GenerationRequest
from mmupt.engine.hf import HFEngine
from mmupt.modeling.inputs import encode, prompt_text
from schemas.engine import SamplingParams
from tests.conftest import png


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> HFEngine:
    return HFEngine.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def requests_() -> list[GenerationRequest]:
    return [
        GenerationRequest("a", "How many red circles are in the image?", [png(dot="red")]),
        GenerationRequest("b", "What is the sum?", [png("blue")]),
        GenerationRequest("c", "How many shapes are there in this picture, in total?", [png(dot="green")]),
    ]


def ids(result):
    return [[c.token_ids for c in per_request] for per_request in result]


def test_shape_and_protocol(engine, requests_):
    assert isinstance(engine, Engine)
    out = engine.generate(requests_, SamplingParams(n=3, temperature=1.0, max_new_tokens=8, seed=1))
    assert [len(x) for x in out] == [3, 3, 3]
    for per_request in out:
        for completion in per_request:
            assert len(completion.token_ids) <= 8
            assert completion.finish_reason in {"stop", "length"}


def test_seed_reproducible_and_sensitive(engine, requests_):
    sampling = SamplingParams(n=4, temperature=1.0, max_new_tokens=10, seed=5)
    first, again = engine.generate(requests_, sampling), engine.generate(requests_, sampling)
    assert ids(first) == ids(again)
    other = engine.generate(requests_, sampling.model_copy(update={"seed": 6}))
    assert ids(first) != ids(other)
    # n samples of one prompt differ from each other (random weights give a flat distribution)
    assert len({tuple(t) for t in ids(first)[0]}) > 1


def test_shared_prefix_matches_naive_path(engine, requests_):
    sampling = SamplingParams(n=4, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=11)
    shared = engine.generate(requests_, sampling, share_prefix=True)
    naive = engine.generate(requests_, sampling, share_prefix=False)
    assert ids(shared) == ids(naive)


def test_greedy_matches_transformers_generate(engine, requests_):
    out = engine.generate(requests_, SamplingParams(n=1, temperature=0.0, max_new_tokens=10))
    for request, per_request in zip(requests_, out, strict=True):
        inputs = encode(
            engine.processor, [prompt_text(engine.processor, request.problem, 1)], [request.images]
        )
        reference = engine.model.generate(
            **inputs, max_new_tokens=10, do_sample=False, suppress_tokens=engine.banned_ids.tolist()
        )
        expected = reference[0, inputs["input_ids"].shape[1] :].tolist()
        got = per_request[0].token_ids
        assert expected[: len(got)] == got


def test_batching_does_not_change_results(tiny_model_dir, requests_):
    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    big = HFEngine.from_pretrained(tiny_model_dir)
    small = HFEngine(big.model, big.processor, model_id="x", batch_size=1)
    assert ids(big.generate(requests_, sampling)) == ids(small.generate(requests_, sampling))


def test_dropping_finished_rows_changes_no_token(tiny_model_dir, requests_):
    """Rows that stop leave the decode batch; the tokens of every row must stay the same."""
    reference = HFEngine.from_pretrained(tiny_model_dir)
    # A random model rarely stops: make a tenth of the vocabulary stop tokens, so rows end at
    # scattered lengths and the drop path runs at almost every step.
    vocab = reference.model.config.text_config.vocab_size
    stops = torch.arange(3, vocab, 10)
    reference.stop_ids = stops
    reference.drop_finished_share = 2.0  # never drop
    dropping = HFEngine(reference.model, reference.processor, model_id="x")
    dropping.stop_ids = stops
    dropping.drop_finished_share = 0.0  # drop at every finish
    sampling = SamplingParams(n=6, temperature=1.0, max_new_tokens=24, seed=3)
    kept, dropped = reference.generate(requests_, sampling), dropping.generate(requests_, sampling)
    assert ids(dropped) == ids(kept)
    lengths = {len(c.token_ids) for per in kept for c in per}
    assert len(lengths) > 2, lengths  # rows did finish at different steps


def test_vision_placeholders_are_never_sampled(engine, requests_):
    out = engine.generate(requests_, SamplingParams(n=8, temperature=5.0, max_new_tokens=16, seed=2))
    banned = set(engine.banned_ids.tolist())
    assert banned and all(not banned & set(c.token_ids) for per in out for c in per)
