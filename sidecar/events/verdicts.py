"""Verdicts: what the sidecar tells Home Assistant about a batch (or a fast-path detection)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..llm.analyzer import AnalysisOutcome
from ..llm.prompt import PromptDetection, PromptInput
from .batching import OpenBatch
from .observations import DetectedObject, FrameObservation

# Labels that make a frame more telling than its confidence alone says.
_PRIORITY_LABELS = {"person": 2.0, "car": 0.5, "truck": 0.5, "motorcycle": 0.5, "bicycle": 0.5}


@dataclass(frozen=True, slots=True)
class LabelCount:
    label: str
    count: int
    max_confidence: float


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict_id: str
    event_id: str
    batch_id: str
    camera_id: str
    camera_name: str
    risk_score: int
    risk_level: str
    summary: str
    reasoning: str
    fast_path: bool
    fallback: bool
    started_at: datetime
    ended_at: datetime
    labels: tuple[LabelCount, ...]
    frame_ids: tuple[str, ...]
    snapshot_frame_id: str
    snapshot_detections: tuple[DetectedObject, ...]
    close_reason: str
    model: str
    llm_ms: float
    completion_tokens: int
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("started_at", "ended_at", "created_at"):
            data[key] = getattr(self, key).isoformat()
        data["snapshot_detections"] = [d.to_json() for d in self.snapshot_detections]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        data: dict[str, Any] = json.loads(text)
        for key in ("started_at", "ended_at", "created_at"):
            data[key] = datetime.fromisoformat(data[key])
        data["labels"] = tuple(LabelCount(**item) for item in data["labels"])
        data["frame_ids"] = tuple(data["frame_ids"])
        data["snapshot_detections"] = tuple(
            DetectedObject.from_json(d) for d in data["snapshot_detections"]
        )
        return cls(**data)


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


def prompt_input(frames: list[FrameObservation], camera_name: str, fast_path: bool) -> PromptInput:
    detections = []
    for frame in frames:
        area = max(1, frame.width * frame.height)
        for det in frame.detections:
            detections.append(
                PromptDetection(
                    label=det.label,
                    confidence=det.confidence,
                    at=frame.captured_at,
                    x_center=(det.x_min + det.x_max) / 2 / max(1, frame.width),
                    y_center=(det.y_min + det.y_max) / 2 / max(1, frame.height),
                    area=(det.x_max - det.x_min) * (det.y_max - det.y_min) / area,
                )
            )
    return PromptInput(
        camera_name=camera_name,
        started_at=min(f.captured_at for f in frames),
        ended_at=max(f.captured_at for f in frames),
        detections=detections,
        fast_path=fast_path,
    )


def build_verdict(
    batch: OpenBatch,
    frames: list[FrameObservation],
    outcome: AnalysisOutcome,
    *,
    fast_path: bool,
    close_reason: str,
) -> Verdict:
    snapshot = most_telling_frame(frames)
    kind = "fast" if fast_path else "final"
    return Verdict(
        verdict_id=f"{batch.batch_id}:{kind}",
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
    )
