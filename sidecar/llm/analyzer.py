"""Turns a closed batch into a risk assessment: prompt, constrained completion, validation,
fallback.

The LLM runs on one dedicated worker thread (llama.cpp contexts are not thread-safe), off the
asyncio loop. Any failure (backend error, deadline, a completion that does not validate twice)
still yields an assessment, flagged as fallback, whose summary says analysis was unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import tzinfo

from .assessment import (
    MAX_COMPLETION_TOKENS,
    AssessmentFormatError,
    RiskAssessment,
    level_for_score,
    parse_assessment,
)
from .backends import LlmBackend, LlmInferenceError
from .prompt import PromptInput, build_messages, time_of_day
from .sanitize import sanitize_untrusted

_LOGGER = logging.getLogger(__name__)

# Base scores of the fallback estimate: what a careful human would assume without looking.
_FALLBACK_BASE = {"person": 50, "car": 25, "truck": 25, "motorcycle": 30, "bicycle": 25}
_FALLBACK_DEFAULT = 15
_FALLBACK_NIGHT_BONUS = 15


@dataclass(frozen=True, slots=True)
class AnalysisOutcome:
    assessment: RiskAssessment
    fallback: bool
    model: str
    llm_ms: float = 0.0
    completion_tokens: int = 0
    error: str = ""
    # The user message the model was given ("" when none was built).
    prompt: str = ""


def fallback_assessment(batch: PromptInput, tz: tzinfo, reason: str) -> RiskAssessment:
    """A conservative estimate from labels and time of day, used when the LLM cannot answer."""
    labels: dict[str, int] = {}
    for det in batch.detections:
        labels[det.label] = labels.get(det.label, 0) + 1
    score = max((_FALLBACK_BASE.get(label, _FALLBACK_DEFAULT) for label in labels), default=0)
    if labels and time_of_day(batch.started_at.astimezone(tz)) == "night":
        score += _FALLBACK_NIGHT_BONUS
    score = min(score, 100)
    seen = ", ".join(f"{count} {sanitize_untrusted(label, 32)}" for label, count in labels.items())
    camera = sanitize_untrusted(batch.camera_name)
    return RiskAssessment(
        risk_score=score,
        risk_level=level_for_score(score),
        summary=f"AI analysis unavailable; {seen or 'no detections'} at {camera}."[:200],
        reasoning=(
            f"Fallback estimate from detected labels and time of day, because the language model "
            f"could not produce an assessment ({reason})."
        )[:600],
    )


class RiskAnalyzer:
    def __init__(
        self,
        backend: LlmBackend | None,
        *,
        tz: tzinfo,
        timeout_s: float = 60.0,
        attempts: int = 2,
    ) -> None:
        self._backend = backend
        self._tz = tz
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secmon-llm")
        self.model_name = backend.name if backend else "none"
        self._ready = asyncio.Event()
        if backend is None:
            self._ready.set()

    @property
    def tz(self) -> tzinfo:
        return self._tz

    @tz.setter
    def tz(self, zone: tzinfo) -> None:
        self._tz = zone

    async def start(self) -> None:
        """Load and warm the model on the worker thread."""
        if self._backend is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._worker, self._backend.load)
        await loop.run_in_executor(self._worker, self._backend.warmup)
        self.model_name = self._backend.name
        self._ready.set()

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    async def assess(self, batch: PromptInput) -> AnalysisOutcome:
        if self._backend is None:
            return self._fallback(batch, "no language model configured")
        await self._ready.wait()  # batches restored at start wait for the model to load
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self._timeout_s
        last_error = ""
        for _ in range(self._attempts):
            try:
                return await loop.run_in_executor(self._worker, self._run, batch, deadline)
            except (LlmInferenceError, AssessmentFormatError, ValueError) as err:
                last_error = str(err)
                _LOGGER.warning("LLM assessment failed for %s: %s", batch.camera_name, err)
            except Exception as err:  # a backend bug must not lose the verdict
                last_error = f"{type(err).__name__}: {err}"
                _LOGGER.exception("LLM assessment crashed for %s", batch.camera_name)
            if time.monotonic() >= deadline:
                break
        return self._fallback(batch, last_error or "timeout")

    def _run(self, batch: PromptInput, deadline: float) -> AnalysisOutcome:
        assert self._backend is not None
        if time.monotonic() >= deadline:
            raise LlmInferenceError("LLM deadline passed before the model was free")
        budget = self._backend.n_ctx - MAX_COMPLETION_TOKENS - 64
        tz = batch.time_zone or self._tz
        messages = build_messages(batch, tz, self._backend.count_tokens, budget)
        completion = self._backend.infer(messages, deadline)
        assessment = parse_assessment(completion.text)
        return AnalysisOutcome(
            assessment=assessment,
            fallback=False,
            model=self._backend.name,
            llm_ms=completion.elapsed_ms,
            completion_tokens=completion.completion_tokens,
            prompt=messages[-1]["content"],
        )

    def _fallback(self, batch: PromptInput, reason: str) -> AnalysisOutcome:
        return AnalysisOutcome(
            assessment=fallback_assessment(batch, batch.time_zone or self._tz, reason),
            fallback=True,
            model=self.model_name,
            error=reason,
        )
