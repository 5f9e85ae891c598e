"""The transformers backend: runs anywhere torch runs (CPU here, any GPU elsewhere).

Why a hand-written decode loop instead of ``model.generate(num_return_sequences=n)``: GRPO and
voting need n samples per prompt, and ``generate`` encodes each image and prefills each prompt n
times. Here every prompt (image included) is prefilled once, the KV cache is repeated n times,
and the n continuations are decoded together from the shared prefix. Positions are passed
explicitly (Qwen2.5-VL's 3-D M-RoPE), so no hidden per-model state carries across calls.
``share_prefix=False`` runs the naive path (n full prefills) with the same sampling code, which
is what the equivalence test and the benchmark compare against.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import BatchFeature, PreTrainedModel, ProcessorMixin

from mmupt.engine.base import Completion, GenerationRequest
from mmupt.engine.sampling import sample_next
from mmupt.modeling.inputs import encode, prompt_text
from mmupt.modeling.loader import load_model_and_processor
from schemas.engine import EngineConfig, SamplingParams


class HFEngine:
    """Batched n-sample generation with one prefill per prompt."""

    def __init__(
        self, model: PreTrainedModel, processor: ProcessorMixin, model_id: str, batch_size: int = 16
    ):
        self.model = model.eval()
        self.processor = processor
        self.model_id = model_id
        self.batch_size = batch_size
        # Finished rows leave the decode batch once this share of it has finished (drop_finished);
        # above 1 they never leave (the reference the equivalence test compares against).
        self.drop_finished_share = 0.125
        tokenizer = processor.tokenizer
        self.pad_id = tokenizer.pad_token_id
        stops = {
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        }
        self.stop_ids = torch.tensor(sorted(i for i in stops if i is not None and i >= 0))
        # Vision placeholders and turn openers are never valid in a response: a sampled
        # <|image_pad|> would make the sequence untrainable (no image features to fill it).
        banned = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_start|>")
        banned_ids = {tokenizer.convert_tokens_to_ids(t) for t in banned}
        unk = tokenizer.unk_token_id
        self.banned_ids = torch.tensor(sorted(i for i in banned_ids if i is not None and i >= 0 and i != unk))
        # transformers >= 5.2x names the KV cache `cache` and warns on every call that uses the old
        # `past_key_values`; older releases only know `past_key_values`.
        self.cache_name = (
            "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"
        )

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, config: EngineConfig | None = None) -> HFEngine:
        config = config or EngineConfig()
        model, processor = load_model_and_processor(model_dir, config.device, config.dtype)
        return cls(model, processor, model_id=str(model_dir), batch_size=config.batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: SamplingParams, share_prefix: bool = True
    ) -> list[list[Completion]]:
        generator = torch.Generator(device="cpu")
        generator.manual_seed(sampling.seed if sampling.seed is not None else torch.seed())
        results: list[list[Completion]] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = list(requests[start : start + self.batch_size])
            results.extend(self._generate_chunk(chunk, sampling, generator, share_prefix))
        return results

    # ------------------------------------------------------------------ internals
    def _encode(self, requests: Sequence[GenerationRequest], repeat: int = 1) -> BatchFeature:
        rows = [r for r in requests for _ in range(repeat)]
        texts = [prompt_text(self.processor, r.problem, len(r.images), r.messages) for r in rows]
        return encode(self.processor, texts, [r.images for r in rows], padding_side="left").to(self.device)

    def _positions(self, inputs: BatchFeature) -> torch.Tensor:
        """3-D M-RoPE positions of the prompt tokens: (3, B, L)."""
        mask = inputs["attention_mask"]
        if inputs.get("image_grid_thw") is None:
            text = (mask.long().cumsum(-1) - 1).clamp(min=0)
            return text.unsqueeze(0).expand(3, -1, -1)
        positions, _ = self.model.model.get_rope_index(
            inputs["input_ids"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=mask,
        )
        return positions

    @torch.inference_mode()
    def _generate_chunk(
        self,
        requests: list[GenerationRequest],
        sampling: SamplingParams,
        generator: torch.Generator,
        share_prefix: bool,
    ) -> list[list[Completion]]:
        n = sampling.n
        inputs = self._encode(requests, repeat=1 if share_prefix else n)
        positions = self._positions(inputs)  # (3, B or B*n, L)
        out = self.model(**inputs, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache, logits = getattr(out, self.cache_name), out.logits[:, -1]  # logits: (rows, V)
        attention = inputs["attention_mask"]
        next_pos = positions.max(dim=-1).values + 1  # (3, rows)
        if share_prefix and n > 1:
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)
            attention = attention.repeat_interleave(n, dim=0)
            next_pos = next_pos.repeat_interleave(n, dim=1)
        rows = logits.shape[0]
        stop_ids = self.stop_ids.to(self.device)
        finished = torch.zeros(rows, dtype=torch.bool, device=self.device)
        # Rows that finish leave the model's batch (see drop_finished), but every row keeps its
        # place in `last_logits` and is sampled every step: the sampler's random draws depend only
        # on the tensor's shape, so dropping rows changes no token of the rows that remain.
        live = torch.arange(rows, device=self.device)  # the rows still in the model's batch
        last_logits = logits.float().clone()
        generated: list[torch.Tensor] = []
        token_logprobs: list[torch.Tensor] = []
        for _ in range(sampling.max_new_tokens):
            masked = last_logits.index_fill(-1, self.banned_ids.to(last_logits.device), float("-inf"))
            token = sample_next(masked.cpu(), sampling.temperature, sampling.top_p, generator).to(self.device)
            token = torch.where(finished, torch.full_like(token, self.pad_id), token)
            generated.append(token)
            if sampling.logprobs:
                token_logprobs.append(sampled_logprobs(last_logits, token, sampling.temperature))
            finished |= torch.isin(token, stop_ids)
            if bool(finished.all()):
                break
            keep = drop_finished(finished[live], self.drop_finished_share)
            if keep is not None:
                live, attention, next_pos = live[keep], attention[keep], next_pos[:, keep]
                cache.batch_select_indices(keep)
            attention = torch.cat([attention, attention.new_ones(len(live), 1)], dim=1)
            out = self.model(
                input_ids=token[live].unsqueeze(1),
                attention_mask=attention,
                position_ids=next_pos.unsqueeze(-1),
                use_cache=True,
                **{self.cache_name: cache},
            )
            cache = getattr(out, self.cache_name)
            last_logits[live] = out.logits[:, -1].float()
            next_pos = next_pos + 1
        tokens = torch.stack(generated, dim=1).cpu() if generated else torch.empty(rows, 0, dtype=torch.long)
        logprobs = torch.stack(token_logprobs, dim=1).cpu() if token_logprobs else None
        completions = [
            self._completion(row, stop_ids.cpu(), None if logprobs is None else logprobs[i])
            for i, row in enumerate(tokens)
        ]
        return [completions[i * n : (i + 1) * n] for i in range(len(requests))]

    def _completion(
        self, row: torch.Tensor, stop_ids: torch.Tensor, logprobs: torch.Tensor | None
    ) -> Completion:
        ids = row.tolist()
        stops = torch.isin(row, stop_ids).nonzero()
        if len(stops):
            ids, reason = ids[: int(stops[0])], "stop"
        else:
            reason = "length"
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
        # the stop token is part of the response the trainer scores (stages/train/rollout.response_ids)
        kept = None if logprobs is None else logprobs[: len(ids) + (reason == "stop")].tolist()
        return Completion(text=text, token_ids=ids, finish_reason=reason, logprobs=kept)


def sampled_logprobs(logits: torch.Tensor, token: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(token) under softmax(logits / T) over the whole vocabulary: what the trainer recomputes.

    Not the sampler's own distribution (banned ids masked, top-p cut): the policy-gradient ratio is
    taken against the model's full distribution, so that is what is recorded. T 0 (greedy) uses T 1.
    """
    scaled = logits.float() / (temperature or 1.0)
    return torch.log_softmax(scaled, dim=-1).gather(-1, token.to(logits.device).unsqueeze(-1)).squeeze(-1)


def drop_finished(finished: torch.Tensor, min_share: float) -> torch.Tensor | None:
    """Indices of the unfinished rows once at least ``min_share`` of the batch has finished, else None.

    Why: a batch decodes until its longest row stops; with n samples of uneven length most rows
    finish early (median 20 of 48 tokens in the demo's rollouts) and were still run through the
    model. Dropping them makes decode cost follow the tokens actually generated. Each drop copies
    the KV cache once, so rows leave in groups rather than one by one.
    """
    done = int(finished.sum())
    if done == 0 or done < min_share * len(finished):
        return None
    return (~finished).nonzero().squeeze(-1)
