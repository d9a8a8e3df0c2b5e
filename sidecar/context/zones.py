"""The owner's named zones per camera (StreamConfig.camera_zones): normalised polygons with a kind
and a priority. A detection is in a zone when its foot point, the bottom centre of its box (where
a person or vehicle stands), is inside the polygon (even-odd rule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..domain import Box, Detection, ZoneHit

KINDS = ("entry_point", "driveway", "yard", "public", "other")
KIND_WORDS = {
    "entry_point": "entry point",
    "driveway": "driveway",
    "yard": "yard",
    "public": "public sidewalk or street",
    "other": "other area",
}
MAX_ZONES = 32
MAX_POINTS = 64


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    kind: str
    priority: int
    points: tuple[tuple[float, float], ...]


def make_zone(name: str, kind: str, priority: int, points: Sequence[tuple[float, float]]) -> Zone:
    """A zone as given, made safe: a known kind ("other" otherwise), points clamped to the image
    and at most MAX_POINTS. Raises ValueError without a name or with fewer than 3 points."""
    name = name.strip()[:64]
    if not name:
        raise ValueError("a zone needs a name")
    if len(points) < 3:
        raise ValueError(f"zone {name!r} needs at least 3 points")
    clamped = tuple(
        (min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0))
        for x, y in points[:MAX_POINTS]
    )
    return Zone(name, kind if kind in KINDS else "other", int(priority), clamped)


def foot_point(box: Box, width: int, height: int) -> tuple[float, float]:
    return ((box.x_min + box.x_max) / 2 / max(1, width), box.y_max / max(1, height))


def contains(points: Sequence[tuple[float, float]], x: float, y: float) -> bool:
    inside = False
    j = len(points) - 1
    for i, (xi, yi) in enumerate(points):
        xj, yj = points[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def zone_hits(
    zones: Sequence[Zone], detections: Sequence[Detection], width: int, height: int
) -> tuple[ZoneHit, ...]:
    """Per zone with detections in it (by priority, then name): their indexes."""
    hits = []
    feet = [foot_point(d.box, width, height) for d in detections]
    for zone in sorted(zones, key=lambda z: (-z.priority, z.name)):
        inside = tuple(i for i, (x, y) in enumerate(feet) if contains(zone.points, x, y))
        if inside:
            hits.append(ZoneHit(zone.name, zone.kind, zone.priority, inside))
    return tuple(hits)
