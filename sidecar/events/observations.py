"""What the event pipeline receives from detection: one frame's detections on one camera."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DetectedObject:
    label: str
    confidence: float
    # Pixel box in the original image.
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def to_json(self) -> list[Any]:
        return [self.label, self.confidence, self.x_min, self.y_min, self.x_max, self.y_max]

    @classmethod
    def from_json(cls, data: list[Any]) -> DetectedObject:
        label, conf, x0, y0, x1, y1 = data
        return cls(str(label), float(conf), float(x0), float(y0), float(x1), float(y1))


@dataclass(frozen=True, slots=True)
class FrameObservation:
    frame_id: str
    camera_id: str
    camera_name: str
    captured_at: datetime  # timezone-aware
    width: int
    height: int
    detections: tuple[DetectedObject, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "frame_id": self.frame_id,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "captured_at": self.captured_at.isoformat(),
            "width": self.width,
            "height": self.height,
            "detections": [d.to_json() for d in self.detections],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameObservation:
        return cls(
            frame_id=data["frame_id"],
            camera_id=data["camera_id"],
            camera_name=data["camera_name"],
            captured_at=datetime.fromisoformat(data["captured_at"]),
            width=int(data["width"]),
            height=int(data["height"]),
            detections=tuple(DetectedObject.from_json(d) for d in data["detections"]),
        )
