"""Protobuf <-> domain conversions (the only place that knows both)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from .. import __version__
from ..detection.stats import LatencySummary, StatsSnapshot
from ..domain import Detection, FrameOutcome, FrameRequest, Verdict
from ..proto import secmon_pb2 as pb
from .client_config import RequestedRules, resolve_threshold
from .gpu import GpuInfo


def frame_request(frame: pb.Frame, threshold: float | None) -> FrameRequest:
    return FrameRequest(
        frame_id=frame.frame_id,
        camera_id=frame.camera_id,
        image=frame.image,
        content_type=frame.content_type,
        captured_at=(
            frame.captured_at.ToDatetime(tzinfo=UTC) if frame.HasField("captured_at") else None
        ),
        source_path=frame.source_path,
        camera_name=frame.camera_name,
        threshold=threshold,
    )


def threshold_or_none(value: float) -> float | None:
    """Proto convention: 0 means the server's default (so do values outside [0, 1])."""
    return resolve_threshold(value)[0]


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def detection_message(d: Detection) -> pb.Detection:
    return pb.Detection(
        label=d.label,
        confidence=d.confidence,
        label_id=d.label_id,
        box=pb.Box(x_min=d.box.x_min, y_min=d.box.y_min, x_max=d.box.x_max, y_max=d.box.y_max),
    )


def frame_result(outcome: FrameOutcome) -> pb.FrameResult:
    result = pb.FrameResult(
        frame_id=outcome.frame_id,
        camera_id=outcome.camera_id,
        width=outcome.width,
        height=outcome.height,
        detections=[detection_message(d) for d in outcome.detections],
        inference_ms=outcome.inference_ms,
        total_ms=outcome.total_ms,
        model_batch_size=outcome.model_batch_size,
        batch_id=outcome.batch_id,
    )
    if outcome.error is not None:
        result.error.CopyFrom(
            pb.FrameError(
                code=f"FRAME_ERROR_CODE_{outcome.error.code.name}", message=outcome.error.message
            )
        )
        result.retryable = outcome.error.code.retryable
    if outcome.captured_at is not None:
        result.captured_at.CopyFrom(timestamp(outcome.captured_at))
    return result


def latency(summary: LatencySummary) -> pb.LatencyStats:
    return pb.LatencyStats(
        count=summary.count,
        mean_ms=summary.mean_ms,
        p50_ms=summary.p50_ms,
        p95_ms=summary.p95_ms,
        max_ms=summary.max_ms,
    )


def gpu_status(gpu: GpuInfo) -> pb.GpuStatus:
    return pb.GpuStatus(
        name=gpu.name,
        utilization_percent=gpu.utilization_percent,
        memory_used_bytes=gpu.memory_used_bytes,
        memory_total_bytes=gpu.memory_total_bytes,
        temperature_c=gpu.temperature_c,
        power_w=gpu.power_w,
    )


def sidecar_status(
    *,
    ready: bool,
    detector_model: str,
    device: str,
    dtype: str,
    default_threshold: float,
    max_batch: int,
    max_delay_ms: float,
    queue_depth: int,
    active_streams: int,
    stats: StatsSnapshot,
    gpus: list[GpuInfo],
    max_frame_bytes: int = 0,
    max_pixels: int = 0,
) -> pb.SidecarStatus:
    return pb.SidecarStatus(
        server_version=__version__,
        ready=ready,
        detector_model=detector_model,
        device=device,
        dtype=dtype,
        default_threshold=default_threshold,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        queue_depth=queue_depth,
        frames_received=stats.frames_received,
        frames_processed=stats.frames_processed,
        frames_failed=stats.frames_failed,
        model_batches=stats.model_batches,
        mean_model_batch_size=stats.mean_model_batch_size,
        inference_latency=latency(stats.inference_latency),
        frame_latency=latency(stats.frame_latency),
        uptime_seconds=stats.uptime_s,
        active_streams=active_streams,
        gpus=[gpu_status(g) for g in gpus],
        errors_by_code=stats.errors_by_code,
        max_frame_bytes=max_frame_bytes,
        max_pixels=max_pixels,
    )


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
        snapshot_detections=[detection_message(d) for d in v.snapshot_detections],
        close_reason=v.close_reason,
        model=v.model,
        llm_ms=v.llm_ms,
        completion_tokens=v.completion_tokens,
        created_at=timestamp(v.created_at),
    )


def requested_rules(config: pb.BatchingConfig) -> RequestedRules:
    """A client's batching settings as sent (client_config.py checks them)."""
    return RequestedRules(
        window_s=config.window_seconds,
        idle_s=config.idle_seconds,
        fast_path_labels=tuple(config.fast_path_labels),
        fast_path_confidence=config.fast_path_confidence,
        fast_path_enabled=not config.fast_path_disabled,
        labels_of_interest=tuple(config.labels_of_interest),
        max_frames=config.max_frames_per_batch,
    )
