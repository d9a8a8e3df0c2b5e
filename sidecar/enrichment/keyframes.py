"""Which pixels the enrichers look at: the batch's snapshot frame and the best crop of each
distinct object, bounded.

Distinct objects: every detection of the snapshot frame is one (they are distinct within a frame),
plus, for each label the snapshot lacks, its most confident detection elsewhere in the batch.
People first, then vehicles, then animals, then the rest, most confident first, at most
`max_objects`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

from ..domain import Box, Detection, FrameObservation

PERSON_LABELS = frozenset({"person"})
VEHICLE_LABELS = frozenset({"car", "truck", "bus", "motorcycle", "bicycle", "train", "boat"})
ANIMAL_LABELS = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)
_CROP_PAD = 0.1
_MIN_CROP = 8


def kind_of(label: str) -> str:
    if label in PERSON_LABELS:
        return "person"
    if label in VEHICLE_LABELS:
        return "vehicle"
    if label in ANIMAL_LABELS:
        return "animal"
    return "other"


_KIND_ORDER = {"person": 0, "vehicle": 1, "animal": 2, "other": 3}


@dataclass(frozen=True, slots=True)
class KeyObject:
    frame: FrameObservation
    detection: Detection

    @property
    def kind(self) -> str:
        return kind_of(self.detection.label)


def select_objects(
    snapshot: FrameObservation,
    frames: Sequence[FrameObservation],
    available: set[str],
    max_objects: int,
) -> list[KeyObject]:
    """The distinct objects to enrich (only from frames whose image is `available`)."""
    chosen = (
        [KeyObject(snapshot, d) for d in snapshot.detections]
        if snapshot.frame_id in available
        else []
    )
    seen = {o.detection.label for o in chosen}
    best: dict[str, KeyObject] = {}
    for frame in frames:
        if frame.frame_id not in available:
            continue
        for det in frame.detections:
            if det.label in seen:
                continue
            current = best.get(det.label)
            if current is None or det.confidence > current.detection.confidence:
                best[det.label] = KeyObject(frame, det)
    chosen.extend(best.values())
    chosen.sort(key=lambda o: (_KIND_ORDER[o.kind], -o.detection.confidence))
    return chosen[:max_objects]


def decode(images: Mapping[str, bytes], frame_id: str) -> Image.Image:
    image = Image.open(io.BytesIO(images[frame_id]))
    image.load()
    return image.convert("RGB")


def crop(image: Image.Image, box: Box) -> Image.Image:
    """The box with a little context around it, never smaller than a few pixels."""
    w, h = image.size
    pad_x = (box.x_max - box.x_min) * _CROP_PAD
    pad_y = (box.y_max - box.y_min) * _CROP_PAD
    x0 = max(0, int(box.x_min - pad_x))
    y0 = max(0, int(box.y_min - pad_y))
    x1 = min(w, max(x0 + _MIN_CROP, int(box.x_max + pad_x + 0.5)))
    y1 = min(h, max(y0 + _MIN_CROP, int(box.y_max + pad_y + 0.5)))
    return image.crop((x0, y0, x1, y1))
