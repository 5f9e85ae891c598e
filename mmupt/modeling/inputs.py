"""Turn questions (+ image bytes) into model inputs, the same way for generation and training."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image
from transformers import BatchFeature, ProcessorMixin

from mmupt.prompts import reasoning_messages


def decode_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def prompt_text(
    processor: ProcessorMixin, problem: str, n_images: int, messages: list[dict[str, Any]] | None = None
) -> str:
    """The chat-formatted prompt, ending with the assistant header the response follows."""
    messages = messages if messages is not None else reasoning_messages(problem, n_images)
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode(
    processor: ProcessorMixin,
    texts: Sequence[str],
    images: Sequence[Sequence[bytes]],
    padding_side: str = "left",
) -> BatchFeature:
    """Tokenise ``texts`` with their images expanded into image-pad tokens; pad to one length.

    Left padding for generation (every row ends where sampling starts), right padding for training.
    """
    flat = [decode_image(blob) for row in images for blob in row]
    processor.tokenizer.padding_side = padding_side
    return processor(text=list(texts), images=flat or None, padding=True, return_tensors="pt")


def training_batch(
    processor: ProcessorMixin,
    prompts: Sequence[str],
    images: Sequence[Sequence[bytes]],
    responses: Sequence[Sequence[int]],
) -> BatchFeature:
    """Prompt + response sequences, right-padded, for teacher-forced training.

    ``responses`` are token ids (a sampled completion plus its end-of-turn token, or a tokenised
    target). Adds ``labels`` (-100 outside responses) and ``response_mask`` (1 on response tokens).
    Response tokens are appended as ids rather than re-tokenised text, so the policy is trained on
    exactly the tokens it sampled.
    """
    import torch

    prompt_inputs = encode(processor, prompts, images, padding_side="right")
    pad_id = processor.tokenizer.pad_token_id
    rows, masks, types = [], [], []
    prompt_mask = prompt_inputs["attention_mask"].bool()
    for i, response in enumerate(responses):
        prompt_ids = prompt_inputs["input_ids"][i][prompt_mask[i]]
        rows.append(torch.cat([prompt_ids, torch.tensor(list(response), dtype=torch.long)]))
        masks.append(torch.cat([torch.zeros(len(prompt_ids)), torch.ones(len(response))]))
        if "mm_token_type_ids" in prompt_inputs:
            types.append(
                torch.cat([prompt_inputs["mm_token_type_ids"][i][prompt_mask[i]], torch.zeros(len(response))])
            )
    length = max(len(r) for r in rows)

    def pad(seqs: list, value: float, dtype: torch.dtype) -> torch.Tensor:
        out = torch.full((len(seqs), length), value, dtype=dtype)
        for j, seq in enumerate(seqs):
            out[j, : len(seq)] = seq
        return out

    input_ids = pad(rows, pad_id, torch.long)
    attention = pad([torch.ones(len(r)) for r in rows], 0, torch.long)
    response_mask = pad(masks, 0, torch.long)
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": input_ids.masked_fill(response_mask == 0, -100),
        "response_mask": response_mask,
    }
    if types:
        batch["mm_token_type_ids"] = pad(types, 0, torch.long)
    for key in ("pixel_values", "image_grid_thw"):
        if key in prompt_inputs:
            batch[key] = prompt_inputs[key]
    return BatchFeature(batch)
