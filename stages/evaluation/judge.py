"""Optional LLM judge (OpenAI-compatible chat completions), for benchmarks judged by an LLM officially.

Off by default and never used unless ``judge.enabled``. It only re-checks responses that the
rule-based scorer marked wrong (MathVerse and MathVista officially use GPT-4 to extract/judge,
so rules can under-count there, never over-count). The endpoint is called with ``urllib``; the
API key comes from the environment variable named in the config and is never logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request

from schemas.evaluate import JudgeConfig
from stages.evaluation.types import EvalItem, Verdict

logger = logging.getLogger(__name__)

MAX_RESPONSE_CHARS = 4000
PROMPT = (
    "You grade a student's final answer against the reference answer of a math question.\n"
    "Question:\n{question}\n\nReference answer: {gold}\n\nStudent's response (its end):\n{response}\n\n"
    "Is the student's final answer equivalent to the reference answer (same choice, same value, "
    "same expression)? Reply with exactly one word: yes or no."
)


class JudgeClient:
    """Asks an OpenAI-compatible endpoint for yes/no equivalence verdicts."""

    def __init__(self, config: JudgeConfig) -> None:
        if not config.enabled:
            raise ValueError("JudgeClient needs judge.enabled: true")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        self.calls = 0
        self.failures = 0

    def _post(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.config.model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
                "max_tokens": 4,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env or "", "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.config.timeout_s) as reply:  # noqa: S310 - configured URL
            payload = json.loads(reply.read().decode("utf-8"))
        return str(payload["choices"][0]["message"]["content"])

    def equivalent(self, item: EvalItem, response: str) -> bool | None:
        """The judge's verdict, or None when it could not be reached (the rule verdict stands)."""
        prompt = PROMPT.format(question=item.problem, gold=item.gold, response=response[-MAX_RESPONSE_CHARS:])
        for attempt in range(self.config.max_retries + 1):
            try:
                self.calls += 1
                answer = self._post(prompt).strip().lower()
                return answer.startswith("yes")
            except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError) as err:
                logger.warning("judge call failed (attempt %d): %s", attempt + 1, type(err).__name__)
                time.sleep(min(2.0**attempt, 10.0))
        self.failures += 1
        return None

    def recheck(self, items: list[EvalItem], responses: list[str], verdicts: list[Verdict]) -> list[Verdict]:
        """Verdicts with rule-wrong, non-empty responses re-judged (note "judge")."""
        out = []
        for item, response, verdict in zip(items, responses, verdicts, strict=True):
            if verdict.correct or not response.strip() or verdict.note == "timeout":
                out.append(verdict)
                continue
            judged = self.equivalent(item, response)
            out.append(Verdict(verdict.extracted, True, "judge") if judged else verdict)
        return out
