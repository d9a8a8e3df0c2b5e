"""Protobuf <-> domain conversion for the event pipeline's messages."""

from __future__ import annotations

from datetime import UTC, datetime

from ..convert import timestamp
from ..proto import secmon_pb2 as pb
from .batcher import BatchingRules
from .verdicts import Verdict

_LEVELS = {
    "low": pb.RISK_LEVEL_LOW,
    "medium": pb.RISK_LEVEL_MEDIUM,
    "high": pb.RISK_LEVEL_HIGH,
    "critical": pb.RISK_LEVEL_CRITICAL,
}


def now() -> datetime:
    return datetime.now(UTC)


def verdict_message(v: Verdict) -> pb.Verdict:
    return pb.Verdict(
        verdict_id=v.verdict_id,
        event_id=v.event_id,
        batch_id=v.batch_id,
        camera_id=v.camera_id,
        camera_name=v.camera_name,
        risk_score=v.risk_score,
        risk_level=_LEVELS[v.risk_level],
        summary=v.summary,
        reasoning=v.reasoning,
        fast_path=v.fast_path,
        fallback=v.fallback,
        started_at=timestamp(v.started_at),
        ended_at=timestamp(v.ended_at),
        labels=[
            pb.LabelCount(label=lc.label, count=lc.count, max_confidence=lc.max_confidence)
            for lc in v.labels
        ],
        frame_ids=list(v.frame_ids),
        snapshot_frame_id=v.snapshot_frame_id,
        snapshot_detections=[
            pb.Detection(
                label=d.label,
                confidence=d.confidence,
                box=pb.Box(x_min=d.x_min, y_min=d.y_min, x_max=d.x_max, y_max=d.y_max),
            )
            for d in v.snapshot_detections
        ],
        close_reason=v.close_reason,
        model=v.model,
        llm_ms=v.llm_ms,
        completion_tokens=v.completion_tokens,
        created_at=timestamp(v.created_at),
    )


def batching_rules(config: pb.BatchingConfig, defaults: BatchingRules) -> BatchingRules:
    """Proto convention: zero/empty fields keep the sidecar's defaults."""
    return BatchingRules(
        window_s=config.window_seconds or defaults.window_s,
        idle_s=config.idle_seconds or defaults.idle_s,
        fast_path_labels=frozenset(config.fast_path_labels) or defaults.fast_path_labels,
        fast_path_confidence=config.fast_path_confidence or defaults.fast_path_confidence,
        fast_path_enabled=not config.fast_path_disabled,
        labels_of_interest=frozenset(config.labels_of_interest) or defaults.labels_of_interest,
    )
