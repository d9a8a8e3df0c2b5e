"""The JSON payloads the state file keeps for batches and verdicts.

Readers accept every format the sidecar has written: a detection written without its class index
(six items) reads back with `label_id` -1; a batch header without `client_id` belongs to no client
(the default rules); a verdict written without enrichment reads back with `enrichment` None.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ..domain import (
    Box,
    Detection,
    EnrichedObject,
    EnricherRun,
    Enrichment,
    FrameObservation,
    IdentityMatch,
    LabelCount,
    ObjectAttribute,
    Verdict,
    ZoneHit,
)
from .batching import OpenBatch


def detection_to_json(d: Detection) -> list[Any]:
    box = d.box
    return [d.label, d.confidence, box.x_min, box.y_min, box.x_max, box.y_max, d.label_id]


def detection_from_json(data: list[Any]) -> Detection:
    label, confidence, x0, y0, x1, y1, *rest = data
    label_id = int(rest[0]) if rest else -1
    box = Box(float(x0), float(y0), float(x1), float(y1))
    return Detection(str(label), label_id, float(confidence), box)


def frame_to_json(frame: FrameObservation) -> dict[str, Any]:
    return {
        "frame_id": frame.frame_id,
        "camera_id": frame.camera_id,
        "camera_name": frame.camera_name,
        "captured_at": frame.captured_at.isoformat(),
        "width": frame.width,
        "height": frame.height,
        "detections": [detection_to_json(d) for d in frame.detections],
        **({"zones": [asdict(z) for z in frame.zones]} if frame.zones else {}),
    }


def frame_from_json(data: dict[str, Any]) -> FrameObservation:
    return FrameObservation(
        frame_id=data["frame_id"],
        camera_id=data["camera_id"],
        camera_name=data["camera_name"],
        captured_at=datetime.fromisoformat(data["captured_at"]),
        width=int(data["width"]),
        height=int(data["height"]),
        detections=tuple(detection_from_json(d) for d in data["detections"]),
        # Frames stored before zones existed have no such key.
        zones=tuple(
            ZoneHit(z["zone"], z["kind"], int(z["priority"]), tuple(z["detections"]))
            for z in data.get("zones", ())
        ),
    )


def frame_row_to_json(frame: FrameObservation) -> str:
    return json.dumps(frame_to_json(frame))


def frame_row_from_json(text: str) -> FrameObservation:
    return frame_from_json(json.loads(text))


def batch_to_json(batch: OpenBatch) -> str:
    """The batch's header; its frames are stored as rows of their own (frame_row_to_json)."""
    return json.dumps(
        {
            "batch_id": batch.batch_id,
            "camera_id": batch.camera_id,
            "camera_name": batch.camera_name,
            "opened_at": batch.opened_at,
            "last_detection_at": batch.last_detection_at,
            "fast_path_sent": batch.fast_path_sent,
            "client_id": batch.client_id,
        }
    )


def batch_from_json(text: str, frames: list[FrameObservation] | None = None) -> OpenBatch:
    """A batch from its header and its frames (or, for headers written before frames had rows of
    their own, the frames inside it)."""
    data: dict[str, Any] = json.loads(text)
    if frames is None:
        frames = [frame_from_json(f) for f in data.get("frames", [])]
    return OpenBatch(
        batch_id=data["batch_id"],
        camera_id=data["camera_id"],
        camera_name=data["camera_name"],
        opened_at=float(data["opened_at"]),
        last_detection_at=float(data["last_detection_at"]),
        frames=frames,
        fast_path_sent=bool(data["fast_path_sent"]),
        client_id=str(data.get("client_id", "")),
    )


def enrichment_to_json(e: Enrichment) -> dict[str, Any]:
    return {
        "caption": e.caption,
        "scene": [asdict(a) for a in e.scene],
        "objects": [
            {
                **asdict(o),
                "box": [o.box.x_min, o.box.y_min, o.box.x_max, o.box.y_max],
                "matches": [
                    {**asdict(m), "seen_at": m.seen_at.isoformat()} for m in o.matches
                ],
            }
            for o in e.objects
        ],
        "runs": [asdict(r) for r in e.runs],
        "total_ms": e.total_ms,
    }


def enrichment_from_json(data: dict[str, Any]) -> Enrichment:
    objects = []
    for item in data["objects"]:
        fields = dict(item)
        fields["box"] = Box(*(float(v) for v in item["box"]))
        fields["attributes"] = tuple(ObjectAttribute(**a) for a in item["attributes"])
        fields["matches"] = tuple(
            IdentityMatch(**{**m, "seen_at": datetime.fromisoformat(m["seen_at"])})
            for m in item["matches"]
        )
        objects.append(EnrichedObject(**fields))
    return Enrichment(
        caption=data["caption"],
        scene=tuple(ObjectAttribute(**a) for a in data["scene"]),
        objects=tuple(objects),
        runs=tuple(EnricherRun(**r) for r in data["runs"]),
        total_ms=float(data["total_ms"]),
    )


def verdict_to_json(verdict: Verdict) -> str:
    data = asdict(verdict)
    for key in ("started_at", "ended_at", "created_at"):
        data[key] = getattr(verdict, key).isoformat()
    data["snapshot_detections"] = [detection_to_json(d) for d in verdict.snapshot_detections]
    data["enrichment"] = (
        enrichment_to_json(verdict.enrichment) if verdict.enrichment is not None else None
    )
    return json.dumps(data)


def verdict_from_json(text: str) -> Verdict:
    data: dict[str, Any] = json.loads(text)
    for key in ("started_at", "ended_at", "created_at"):
        data[key] = datetime.fromisoformat(data[key])
    data["labels"] = tuple(LabelCount(**item) for item in data["labels"])
    data["frame_ids"] = tuple(data["frame_ids"])
    data["zones"] = tuple(data.get("zones", ()))
    data["snapshot_detections"] = tuple(
        detection_from_json(d) for d in data["snapshot_detections"]
    )
    # Verdicts stored before enrichment existed have no such key.
    enrichment = data.pop("enrichment", None)
    return Verdict(
        **data, enrichment=enrichment_from_json(enrichment) if enrichment is not None else None
    )
