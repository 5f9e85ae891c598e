"""The vLLM backend against vLLM's public API, with vLLM itself faked.

vLLM needs a CUDA GPU and cannot even be installed here, so ONLY the ``vllm`` module is replaced,
at its boundary: a stub inserted in ``sys.modules`` provides ``LLM`` and ``SamplingParams`` that
record how they are called and return objects shaped like vLLM's ``RequestOutput`` /
``CompletionOutput`` (``request_id``, ``outputs[i].index/text/token_ids/finish_reason``). Everything on
our side (processor, chat template, image decoding, output mapping) is real. What this cannot show:
that a real vLLM accepts these arguments and loads Qwen2.5-VL weights by HF names (GPU only).
"""

from __future__ import annotations

import io
import sys
import types
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from mmupt.engine import build_engine
from mmupt.engine.base import Completion, GenerationRequest
from mmupt.errors import ModelLoadError
from mmupt.modeling.inputs import prompt_text
from mmupt.modeling.loader import load_processor
from schemas.engine import EngineConfig, SamplingParams


def _png(color: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeSamplingParams:
    """Records its keyword arguments, like vllm.SamplingParams' fields."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        for key, value in kwargs.items():
            setattr(self, key, value)


class FakeLLM:
    instances: list[FakeLLM] = []
    stop_id = 0  # set by the fixture to the tokenizer's <|im_end|> id

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs
        self.generate_calls: list[tuple[list, object, dict]] = []
        self.loaded: list[list[tuple[str, torch.Tensor]]] = []
        self.prefix_cache_resets = 0
        FakeLLM.instances.append(self)

    def generate(self, prompts, sampling_params=None, **kwargs):
        self.generate_calls.append((prompts, sampling_params, kwargs))
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        outputs = []
        for r, (prompt, param) in enumerate(zip(prompts, params, strict=True)):
            samples = []
            for i in reversed(range(param.n)):  # vLLM does not promise index order inside outputs
                stopped = i % 2 == 0
                ids = [100 + r, 200 + i] + ([FakeLLM.stop_id] if stopped else [])
                samples.append(
                    SimpleNamespace(
                        index=i,
                        text=f"r{r} s{i} \\boxed{{{i}}}",
                        token_ids=tuple(ids),
                        finish_reason="stop" if stopped else "length",
                        stop_reason=None,
                    )
                )
            outputs.append(
                SimpleNamespace(request_id=str(r), prompt=prompt["prompt"], outputs=samples, finished=True)
            )
        return outputs

    def apply_model(self, func):
        model = SimpleNamespace(load_weights=lambda weights: self.loaded.append(list(weights)))
        return [func(model)]

    def reset_prefix_cache(self):
        self.prefix_cache_resets += 1
        return True


@pytest.fixture
def fake_vllm(monkeypatch, tiny_model_dir):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    FakeLLM.stop_id = load_processor(tiny_model_dir).tokenizer.convert_tokens_to_ids("<|im_end|>")
    return module


def test_engine_builds_llm_prompts_and_sampling_params(fake_vllm, tiny_model_dir):
    from mmupt.engine.vllm import VLLMEngine

    config = EngineConfig(
        backend="vllm", dtype="bfloat16", gpu_memory_utilization=0.4, tensor_parallel_size=2
    )
    engine = build_engine(tiny_model_dir, config, max_model_len=4096, seed=5)
    assert isinstance(engine, VLLMEngine)
    (llm,) = FakeLLM.instances
    assert llm.init_kwargs == {
        "model": str(tiny_model_dir),
        "dtype": "bfloat16",
        "gpu_memory_utilization": 0.4,
        "tensor_parallel_size": 2,
        "limit_mm_per_prompt": {"image": 4},
        "seed": 5,
        "max_model_len": 4096,
    }

    requests = [
        GenerationRequest("a", "<image>How many circles?", [_png("red", (56, 56))]),
        GenerationRequest(
            "b", "Two pictures: which is larger?", [_png("blue", (28, 56)), _png("green", (56, 28))]
        ),
        GenerationRequest("c", "No image at all?", []),
    ]
    sampling = SamplingParams(n=3, temperature=0.7, top_p=0.99, max_new_tokens=64, seed=11)
    results = engine.generate(requests, sampling)

    ((prompts, params, kwargs),) = llm.generate_calls
    assert kwargs == {"use_tqdm": False}
    processor = load_processor(tiny_model_dir)
    for request, prompt in zip(requests, prompts, strict=True):
        assert prompt["prompt"] == prompt_text(processor, request.problem, len(request.images))
        assert prompt["prompt"].count("<|image_pad|>") == len(request.images)  # one placeholder per image
    assert "multi_modal_data" not in prompts[2]
    images = [prompts[0]["multi_modal_data"]["image"], prompts[1]["multi_modal_data"]["image"]]
    assert [[im.size for im in row] for row in images] == [[(56, 56)], [(28, 56), (56, 28)]]
    assert all(im.mode == "RGB" for row in images for im in row)
    # one SamplingParams per request: same n/temperature/top_p/max_tokens, seed + request index
    assert [p.kwargs["seed"] for p in params] == [11, 12, 13]
    for p in params:
        assert (p.n, p.temperature, p.top_p, p.max_tokens) == (3, 0.7, 0.99, 64)
        assert FakeLLM.stop_id in p.stop_token_ids

    # outputs: request order kept, samples sorted by index, stop token stripped, reasons mapped
    assert [len(r) for r in results] == [3, 3, 3]
    for r, completions in enumerate(results):
        for i, completion in enumerate(completions):
            assert isinstance(completion, Completion)
            assert completion.text == f"r{r} s{i} \\boxed{{{i}}}"
            assert completion.token_ids == [100 + r, 200 + i]
            assert completion.finish_reason == ("stop" if i % 2 == 0 else "length")


def test_unseeded_sampling_uses_one_params_object(fake_vllm, tiny_model_dir):
    engine = build_engine(tiny_model_dir, EngineConfig(backend="vllm"))
    engine.generate([GenerationRequest("a", "q?", [])], SamplingParams(n=2, seed=None))
    ((_, params, _),) = FakeLLM.instances[0].generate_calls
    assert isinstance(params, FakeSamplingParams) and params.seed is None and params.n == 2


def test_load_weights_goes_through_apply_model_and_resets_prefix_cache(fake_vllm, tiny_model_dir):
    engine = build_engine(tiny_model_dir, EngineConfig(backend="vllm"))
    weights = [
        ("model.language_model.embed_tokens.weight", torch.ones(2, 2)),
        ("lm_head.weight", torch.zeros(2)),
    ]
    engine.load_weights(iter(weights))
    llm = FakeLLM.instances[0]
    assert [name for name, _ in llm.loaded[0]] == [name for name, _ in weights]
    assert torch.equal(llm.loaded[0][0][1], torch.ones(2, 2))
    assert llm.prefix_cache_resets == 1  # KV cached under the old weights must not be reused


def test_missing_vllm_is_a_clear_error(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ModelLoadError, match="vllm package is not installed"):
        build_engine(tiny_model_dir, EngineConfig(backend="vllm"))
