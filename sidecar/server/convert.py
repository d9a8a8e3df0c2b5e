"""Protobuf <-> domain conversions (the only place that knows both)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from .. import __version__
from ..context.feedback import OwnerFeedback
from ..context.home import HomeState
from ..context.zones import MAX_ZONES, Zone, make_zone
from ..detection.batch_costs import SizeCost
from ..detection.stats import LatencySummary, StatsSnapshot
from ..domain import (
    Detection,
    EnrichedObject,
    Enrichment,
    FrameOutcome,
    FrameRequest,
    ObjectAttribute,
    Verdict,
    ZoneHit,
)
from ..enrichment.zoo import ZooState
from ..proto import secmon_pb2 as pb
from .client_config import RequestedRules, resolve_threshold
from .gpu import GpuInfo


def frame_request(
    frame: pb.Frame, threshold: float | None, client_id: str = ""
) -> FrameRequest:
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
        client_id=client_id,
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


def camera_zones(
    config: pb.StreamConfig,
) -> tuple[dict[str, tuple[Zone, ...]] | None, list[str]]:
    """The owner's zones per camera (None when the config does not set them) and a warning per
    zone left out."""
    if not config.camera_zones_set:
        return None, []
    found: dict[str, tuple[Zone, ...]] = {}
    warnings: list[str] = []
    for camera in config.camera_zones:
        zones = []
        for z in camera.zones[:MAX_ZONES]:
            try:
                zones.append(
                    make_zone(z.name, z.kind, z.priority, [(p.x, p.y) for p in z.points])
                )
            except ValueError as err:
                warnings.append(f"camera {camera.camera_id[:64]}: {err}; zone left out")
        found[camera.camera_id] = tuple(zones)
    return found, warnings


def frame_result(outcome: FrameOutcome, zones: Sequence[ZoneHit] = ()) -> pb.FrameResult:
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
        zones=[
            pb.ZoneHit(zone=z.zone, kind=z.kind, detections=list(z.detections)) for z in zones
        ],
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
    if outcome.tamper is not None:
        result.tamper.kind = outcome.tamper.kind
        result.tamper.score = outcome.tamper.score
        if outcome.tamper.since is not None:
            result.tamper.since.CopyFrom(timestamp(outcome.tamper.since))
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


def add_capacity(
    status: pb.SidecarStatus,
    *,
    max_frames_in_flight: int,
    batch_costs: list[SizeCost],
    batching_policy: str,
    decode_workers: int,
    max_decoded_frames: int,
    rss_bytes: int,
    peak_rss_bytes: int,
    compile_mode: str,
) -> None:
    """The batching, capacity and memory part of the status."""
    status.max_frames_in_flight = max_frames_in_flight
    status.batch_costs.extend(
        pb.BatchSizeCost(
            size=c.size, forward_ms=c.forward_ms, samples=c.samples, batches=c.batches
        )
        for c in batch_costs
    )
    status.batching_policy = batching_policy
    status.decode_workers = decode_workers
    status.max_decoded_frames = max_decoded_frames
    status.rss_bytes = rss_bytes
    status.peak_rss_bytes = peak_rss_bytes
    status.compile_mode = compile_mode


_LEVELS = {
    "low": pb.RISK_LEVEL_LOW,
    "medium": pb.RISK_LEVEL_MEDIUM,
    "high": pb.RISK_LEVEL_HIGH,
    "critical": pb.RISK_LEVEL_CRITICAL,
}


def now() -> datetime:
    return datetime.now(UTC)


def attribute_message(a: ObjectAttribute) -> pb.Attribute:
    return pb.Attribute(name=a.name, value=a.value, score=a.score)


def enriched_object_message(o: EnrichedObject) -> pb.EnrichedObject:
    return pb.EnrichedObject(
        label=o.label,
        frame_id=o.frame_id,
        confidence=o.confidence,
        box=pb.Box(x_min=o.box.x_min, y_min=o.box.y_min, x_max=o.box.x_max, y_max=o.box.y_max),
        attributes=[attribute_message(a) for a in o.attributes],
        identity_id=o.identity_id,
        identity=o.identity,
        visits_24h=o.visits_24h,
        matches=[
            pb.IdentityMatch(
                camera_id=m.camera_id,
                camera_name=m.camera_name,
                seen_at=timestamp(m.seen_at),
                similarity=m.similarity,
            )
            for m in o.matches
        ],
        plate=o.plate,
        plate_score=o.plate_score,
        known_plate=o.known_plate,
        posture=o.posture,
        distance=o.distance,
        movement=o.movement,
    )


def fill_enrichment(message: pb.Verdict, e: Enrichment) -> None:
    message.caption = e.caption
    message.scene_attributes.extend(attribute_message(a) for a in e.scene)
    message.objects.extend(enriched_object_message(o) for o in e.objects)
    message.enrichers.extend(
        pb.EnricherRun(name=r.name, status=r.status, reason=r.reason, ms=r.ms) for r in e.runs
    )
    message.enrichment_ms = e.total_ms


def enrichment_status(
    zoo: ZooState, enrichers: list[str], batches: int, latency_ms: LatencySummary
) -> pb.EnrichmentStatus:
    return pb.EnrichmentStatus(
        enrichers=enrichers,
        device=zoo.device,
        budget_bytes=zoo.budget_bytes,
        margin_bytes=zoo.margin_bytes,
        in_use_bytes=zoo.in_use_bytes,
        high_water_bytes=zoo.high_water_bytes,
        loads=zoo.loads,
        evictions=zoo.evictions,
        skips=zoo.skips,
        out_of_memory=zoo.ooms,
        batches_enriched=batches,
        enrichment_latency=latency(latency_ms),
        models=[
            pb.ZooModel(
                name=m.name,
                spec=m.spec,
                loaded=m.loaded,
                resident=m.resident,
                priority=m.priority,
                weights_bytes=m.weights_bytes,
                working_set_bytes=m.peak_bytes,
                leases=m.leases,
                loads=m.loads,
                evictions=m.evictions,
                out_of_memory=m.ooms,
                load_ms=m.load_ms,
                disabled=m.disabled,
            )
            for m in zoo.models
        ],
    )


def home_state(message: pb.HomeState) -> HomeState:
    return HomeState(
        alarm=message.alarm[:32],
        people_home=max(0, message.people_home) if message.people_known else None,
        people_tracked=max(0, message.people_tracked),
        vacation=message.vacation if message.vacation_known else None,
        changed_at=(
            message.changed_at.ToDatetime(tzinfo=UTC) if message.HasField("changed_at") else None
        ),
    )


def owner_feedback(message: pb.Feedback) -> OwnerFeedback:
    return OwnerFeedback(
        event_id=message.event_id[:128],
        camera_id=message.camera_id[:128],
        labels=tuple(label[:32] for label in message.labels[:16]),
        started_at=message.started_at.ToDatetime(tzinfo=UTC),
        verdict=message.verdict,
        note=message.note[:1000],
        given_at=message.given_at.ToDatetime(tzinfo=UTC),
        risk_score=min(max(message.risk_score, 0), 100),
        identities=tuple(i[:32] for i in message.identities[:8]),
    )


def camera_notes(config: pb.StreamConfig) -> dict[str, str] | None:
    """The owner's notes per camera, or None when the config does not set them."""
    if not config.camera_notes_set:
        return None
    return {n.camera_id: n.note for n in config.camera_notes if n.camera_id and n.note.strip()}


def known_plates(config: pb.StreamConfig) -> dict[str, str] | None:
    """The home's known plates (plate -> name), or None when the config does not set them."""
    if not config.known_plates_set:
        return None
    return {p.plate: p.name for p in config.known_plates if p.plate}


def enrichers_off(config: pb.StreamConfig) -> frozenset[str] | None:
    """The enrichers a client switched off, or None when the config does not say."""
    if not config.enrichers_off_set:
        return None
    return frozenset(config.enrichers_off)


def verdict_message(v: Verdict) -> pb.Verdict:
    message = _verdict_message(v)
    if v.enrichment is not None:
        fill_enrichment(message, v.enrichment)
    return message


def _verdict_message(v: Verdict) -> pb.Verdict:
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
        anomaly=v.anomaly,
        baseline_days=v.baseline_days,
        prompt=v.prompt,
        zones=list(v.zones),
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
