"""Protobuf <-> the integration's own types: the one place that builds or reads messages' fields
for the stream (Hello's config, frames), for drawing (detections as boxes) and for
`secmon.analyze_image` (its frame, its response)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from homeassistant.util import dt as dt_util

from ..const import ENRICHERS
from ..ingest.imaging import Box
from ..settings import SecmonSettings
from ..storage.frame_queue import QueuedFrame
from .proto import secmon_pb2


def stream_config(settings: SecmonSettings) -> secmon_pb2.StreamConfig:
    """What we push to the sidecar with Hello (options changes reload the entry: new Hello)."""
    return secmon_pb2.StreamConfig(
        detection_threshold=settings.threshold,
        batching=secmon_pb2.BatchingConfig(
            window_seconds=settings.batch_window,
            idle_seconds=settings.batch_idle,
            fast_path_labels=list(settings.fast_path_labels),
            fast_path_confidence=settings.fast_path_confidence,
            # No fast-path labels chosen: no fast path (an empty list would mean the default).
            fast_path_disabled=not settings.fast_path_labels,
            labels_of_interest=list(settings.classes),
        ),
        known_plates=[
            secmon_pb2.KnownPlate(plate=plate, name=name) for plate, name in settings.known_plates
        ],
        # Always set: an emptied option empties the sidecar's list.
        known_plates_set=True,
        enrichers_off=[n for n in ENRICHERS if n not in settings.enrichers],
        enrichers_off_set=True,
        camera_notes=[
            secmon_pb2.CameraNote(camera_id=camera_id, note=note)
            for camera_id, note in sorted(settings.camera_notes.items())
        ],
        camera_notes_set=True,
        camera_zones=[
            zones_message(camera_id, zones)
            for camera_id, zones in sorted(settings.camera_zones.items())
        ],
        camera_zones_set=True,
    )


def zones_message(camera_id: str, zones: Iterable[Mapping[str, Any]]) -> secmon_pb2.CameraZones:
    """A camera's zones as the options keep them (zones_options.py)."""
    return secmon_pb2.CameraZones(
        camera_id=camera_id,
        zones=[
            secmon_pb2.Zone(
                name=z["name"],
                kind=z["kind"],
                priority=int(z["priority"]),
                points=[secmon_pb2.ZonePoint(x=x, y=y) for x, y in z["points"]],
            )
            for z in zones
        ],
    )


def frame_message(frame: QueuedFrame) -> secmon_pb2.ClientMessage:
    """A queued frame as a stream message."""
    message = secmon_pb2.ClientMessage(
        frame=secmon_pb2.Frame(
            frame_id=frame.frame_id,
            camera_id=frame.camera_id,
            camera_name=frame.camera_name,
            image=frame.image,
            content_type=frame.content_type,
            source_path=frame.path,
        )
    )
    message.frame.captured_at.FromNanoseconds(int(frame.captured_at * 1e9))
    if frame.clip_offset is not None:
        message.frame.clip_name = PurePath(frame.path).name
        message.frame.clip_offset_seconds = frame.clip_offset
    return message


# The most boxes drawn on one picture (the detector finds at most a few hundred; a result with
# more keeps its most confident ones, so drawing a picture stays cheap whatever the sidecar sends).
MAX_BOXES = 300


def boxes_of(detections: Iterable[secmon_pb2.Detection]) -> list[Box]:
    """Detections as boxes to draw (a box with a coordinate that is not a finite number is left
    out: nothing could draw it); at most MAX_BOXES, the most confident."""
    boxes = [
        Box(
            label=d.label,
            confidence=d.confidence,
            x_min=d.box.x_min,
            y_min=d.box.y_min,
            x_max=d.box.x_max,
            y_max=d.box.y_max,
        )
        for d in detections
        if all(math.isfinite(v) for v in (d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max))
    ]
    if len(boxes) > MAX_BOXES:
        boxes = sorted(boxes, key=lambda b: -b.confidence)[:MAX_BOXES]
    return boxes


def analyze_frame(image: bytes, sha256: str, content_type: str, source: str) -> secmon_pb2.Frame:
    """The frame of a `secmon.analyze_image` call, captured now."""
    frame = secmon_pb2.Frame(
        frame_id=f"analyze-{sha256[:32]}",
        camera_id="analyze_image",
        image=image,
        content_type=content_type,
        source_path=source,
    )
    frame.captured_at.FromDatetime(dt_util.utcnow())
    return frame


def result_to_dict(result: secmon_pb2.FrameResult, source: str) -> dict[str, Any]:
    """A FrameResult as service response data (its detections read as boxes_of reads them)."""
    return {
        "source": source,
        "width": result.width,
        "height": result.height,
        "inference_ms": round(result.inference_ms, 2),
        "detections": [
            {
                "label": box.label,
                "confidence": round(box.confidence, 4),
                "box": {
                    "x_min": round(box.x_min, 1),
                    "y_min": round(box.y_min, 1),
                    "x_max": round(box.x_max, 1),
                    "y_max": round(box.y_max, 1),
                },
            }
            for box in boxes_of(result.detections)
        ],
    }
