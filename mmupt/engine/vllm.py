"""The vLLM backend (GPU): the same ``generate`` contract as ``hf``, with paged attention and batching.

Prompts are built exactly as the hf backend builds them (the model's chat template through
``mmupt.modeling.inputs.prompt_text``), images travel as PIL images in ``multi_modal_data``, and the n
samples of a request come from one vLLM request with ``SamplingParams(n=...)``, so the prompt and its
images are prefilled once. Each request gets its own seed (``seed + request index``): identical
prompts in one batch still get different samples, and a rerun gets the same ones.

For GRPO the engine runs colocated with the trainer and is refreshed after every update with
``load_weights`` (vLLM's public ``LLM.apply_model`` calls the model's own ``load_weights``, which
maps Hugging Face parameter names; the prefix cache is then reset, since cached KV blocks were
computed with the old weights). ``in_process=True`` keeps vLLM's engine core in this process so the
weights are handed over without serialisation.

``vllm`` is imported lazily: this module imports (and is testable) where vLLM cannot be installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from mmupt.engine.base import Completion, GenerationRequest
from mmupt.errors import ModelLoadError
from mmupt.modeling.inputs import decode_image, prompt_text
from mmupt.modeling.loader import check_model_dir, load_processor
from schemas.engine import EngineConfig, SamplingParams

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise ModelLoadError(
            "engine backend vllm: the vllm package is not installed (pip install 'mmupt[vllm]' on a GPU "
            "machine), or use backend: hf"
        ) from None
    return vllm


class VLLMEngine:
    """n-sample generation with vLLM; one engine per GPU worker (``tensor_parallel_size`` for more)."""

    def __init__(
        self,
        model_dir: str | Path,
        config: EngineConfig | None = None,
        *,
        max_model_len: int | None = None,
        seed: int = 0,
        max_images_per_prompt: int = 4,
        in_process: bool = False,
    ):
        config = config or EngineConfig(backend="vllm")
        path = check_model_dir(model_dir)
        if in_process:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _import_vllm()
        self._vllm = vllm
        self.model_id = str(path)
        self.processor = load_processor(path)
        tokenizer = self.processor.tokenizer
        self.stop_ids = sorted(
            {
                i
                for i in (tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS)
                if isinstance(i, int) and i >= 0
            }
        )
        options: dict[str, Any] = {
            "model": str(path),
            "dtype": config.dtype,
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "tensor_parallel_size": config.tensor_parallel_size,
            "limit_mm_per_prompt": {"image": max_images_per_prompt},
            "seed": seed,
        }
        if max_model_len is not None:
            options["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**options)

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingParams
    ) -> list[list[Completion]]:
        if not requests:
            return []
        prompts = [self._prompt(request) for request in requests]
        if sampling.seed is None:
            params: Any = self._sampling(sampling, None)
        else:
            params = [self._sampling(sampling, sampling.seed + i) for i in range(len(requests))]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
        return [self._completions(output, sampling.n) for output in outputs]

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Replace the engine's weights with the trainer's (Hugging Face names), then drop cached KV."""
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        self.llm.apply_model(lambda model: model.load_weights(weights=weights))
        self.llm.reset_prefix_cache()

    # ------------------------------------------------------------------ internals
    def _prompt(self, request: GenerationRequest) -> dict[str, Any]:
        text = prompt_text(self.processor, request.problem, len(request.images), request.messages)
        prompt: dict[str, Any] = {"prompt": text}
        if request.images:
            prompt["multi_modal_data"] = {"image": [decode_image(blob) for blob in request.images]}
        return prompt

    def _sampling(self, sampling: SamplingParams, seed: int | None) -> Any:
        return self._vllm.SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            stop_token_ids=list(self.stop_ids),
        )

    def _completions(self, output: Any, n: int) -> list[Completion]:
        samples = sorted(output.outputs, key=lambda o: o.index)
        if len(samples) != n:
            raise RuntimeError(
                f"vLLM returned {len(samples)} samples for request {output.request_id}, expected {n}"
            )
        completions = []
        for sample in samples:
            ids = list(sample.token_ids)
            stopped = sample.finish_reason == "stop"
            if stopped and ids and ids[-1] in self.stop_ids:
                ids = ids[:-1]  # the contract: token_ids exclude the stop token (as the hf backend)
            completions.append(
                Completion(text=sample.text, token_ids=ids, finish_reason="stop" if stopped else "length")
            )
        return completions
