"""The one reasoning prompt shared by SFT, rollouts and evaluation.

Training and evaluation must ask the same way, or evaluation measures prompt mismatch. The
wording asks for brief reasoning and a final ``\\boxed{}`` answer, as MM-UPT's training prompt does
(our own phrasing).
"""

from __future__ import annotations

from typing import Any

PROMPT_VERSION = "reason-boxed-v1"
REASONING_INSTRUCTION = "Think step by step, then give the final answer in \\boxed{}."


def reasoning_messages(problem: str, n_images: int) -> list[dict[str, Any]]:
    """Chat messages (HF multimodal format) for one question over ``n_images`` images.

    ``<image>`` placeholders in ``problem`` are removed: images always come first, one content
    item each, which is where Qwen2.5-VL's chat template expects them.
    """
    text = problem.replace("<image>", "").strip()
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": f"{text}\n{REASONING_INSTRUCTION}"})
    return [{"role": "user", "content": content}]
