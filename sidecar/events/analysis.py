"""From a closed batch, or a fast-path frame, to its verdict: the stages between the batch closing
and the verdict outbox.

    the batch's frames -> how usual its labels are (context/baseline.py, read by the pipeline) ->
    enrichment of its key frames (when an Enricher is given; it always
    returns, with what succeeded) -> prompt input -> risk assessment (RiskAnalyzer: LLM, or its
    fallback) -> Verdict (labels, snapshot frame, enrichment, timings)

`assess_batch` runs them in that order; the event pipeline stores and delivers what it returns.
"""

from __future__ import annotations

from datetime import tzinfo

from ..context.batch import BatchContext
from ..domain import Enrichment, FrameObservation, LabelCount, Verdict
from ..enrichment.service import Enricher, EnrichRequest
from ..llm.analyzer import AnalysisOutcome, RiskAnalyzer
from ..llm.prompt import PromptInput
from .batching import OpenBatch

# Labels that make a frame more telling than its confidence alone says.
_PRIORITY_LABELS = {"person": 2.0, "car": 0.5, "truck": 0.5, "motorcycle": 0.5, "bicycle": 0.5}


def verdict_id(batch_id: str, *, fast_path: bool) -> str:
    """A batch has at most two verdicts: its fast-path one and its final one."""
    return f"{batch_id}:{'fast' if fast_path else 'final'}"


async def assess_batch(
    analyzer: RiskAnalyzer,
    batch: OpenBatch,
    frames: list[FrameObservation],
    *,
    fast_path: bool,
    close_reason: str,
    time_zone: tzinfo | None = None,
    enricher: Enricher | None = None,
    context: BatchContext | None = None,
) -> tuple[Verdict, AnalysisOutcome]:
    """The verdict for `frames` of `batch` (all of them, or the one fast-path frame)."""
    enrichment = None
    if enricher is not None:
        enrichment = await enricher.enrich(
            EnrichRequest(
                batch_id=batch.batch_id,
                camera_id=batch.camera_id,
                camera_name=batch.camera_name,
                frames=frames,
                snapshot=most_telling_frame(frames),
                fast_path=fast_path,
                client_id=batch.client_id,
            )
        )
    prompt = prompt_input(
        frames, batch.camera_name, fast_path=fast_path, time_zone=time_zone, enrichment=enrichment,
        context=context,
    )
    outcome = await analyzer.assess(prompt)
    verdict = build_verdict(
        batch, frames, outcome, fast_path=fast_path, close_reason=close_reason,
        enrichment=enrichment, context=context,
    )
    return verdict, outcome


def prompt_input(
    frames: list[FrameObservation],
    camera_name: str,
    *,
    fast_path: bool,
    time_zone: tzinfo | None = None,
    enrichment: Enrichment | None = None,
    context: BatchContext | None = None,
) -> PromptInput:
    context = context or BatchContext()
    return PromptInput(
        camera_name=camera_name,
        started_at=min(f.captured_at for f in frames),
        ended_at=max(f.captured_at for f in frames),
        frames=frames,
        fast_path=fast_path,
        time_zone=time_zone,
        enrichment=enrichment,
        normality=context.normality,
        other_cameras=context.other_cameras,
        home=context.home,
        owner_note=context.owner_note,
        feedback=context.feedback,
        tamper=context.tamper,
    )


def batch_zones(frames: list[FrameObservation]) -> tuple[str, ...]:
    """The zones the batch's detections were in, by priority."""
    hits = sorted(
        (z for f in frames for z in f.zones), key=lambda z: (-z.priority, z.zone)
    )
    return tuple(dict.fromkeys(z.zone for z in hits))


def most_telling_frame(frames: list[FrameObservation]) -> FrameObservation:
    def weight(frame: FrameObservation) -> float:
        return sum(
            d.confidence * (1.0 + _PRIORITY_LABELS.get(d.label, 0.0)) for d in frame.detections
        )

    return max(frames, key=weight)


def label_counts(frames: list[FrameObservation]) -> tuple[LabelCount, ...]:
    counts: dict[str, tuple[int, float]] = {}
    for frame in frames:
        for det in frame.detections:
            count, best = counts.get(det.label, (0, 0.0))
            counts[det.label] = (count + 1, max(best, det.confidence))
    return tuple(
        LabelCount(label, count, round(best, 4))
        for label, (count, best) in sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))
    )


def build_verdict(
    batch: OpenBatch,
    frames: list[FrameObservation],
    outcome: AnalysisOutcome,
    *,
    fast_path: bool,
    close_reason: str,
    enrichment: Enrichment | None = None,
    context: BatchContext | None = None,
) -> Verdict:
    normality = context.normality if context is not None else None
    snapshot = most_telling_frame(frames)
    return Verdict(
        verdict_id=verdict_id(batch.batch_id, fast_path=fast_path),
        event_id=batch.event_id,
        batch_id=batch.batch_id,
        camera_id=batch.camera_id,
        camera_name=batch.camera_name,
        risk_score=outcome.assessment.risk_score,
        risk_level=outcome.assessment.risk_level.value,
        summary=outcome.assessment.summary,
        reasoning=outcome.assessment.reasoning,
        fast_path=fast_path,
        fallback=outcome.fallback,
        started_at=min(f.captured_at for f in frames),
        ended_at=max(f.captured_at for f in frames),
        labels=label_counts(frames),
        frame_ids=tuple(f.frame_id for f in frames),
        snapshot_frame_id=snapshot.frame_id,
        snapshot_detections=snapshot.detections,
        close_reason=close_reason,
        model=outcome.model,
        llm_ms=round(outcome.llm_ms, 1),
        completion_tokens=outcome.completion_tokens,
        enrichment=enrichment,
        anomaly=normality.anomaly if normality is not None else 0.0,
        baseline_days=normality.history_days if normality is not None else 0.0,
        prompt=outcome.prompt,
        zones=batch_zones(frames),
    )
