"""Zones as the options keep them and as the owner types them: one zone per line,
`name | kind | priority | x,y x,y x,y ...`, coordinates in fractions of the image (0..1 from the
top left), e.g. `Porch | entry_point | 2 | 0.1,0.5 0.4,0.5 0.4,1 0.1,1`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..const import ZONE_KINDS

MAX_ZONES = 32
MAX_POINTS = 64


def _zone(line: str) -> dict[str, Any] | None:
    """One line's zone; None when it does not read."""
    parts = [p.strip() for p in line.split("|")]
    if len(parts) != 4:
        return None
    name, kind, priority, points_text = parts
    try:
        points = [[float(c) for c in pair.split(",")] for pair in points_text.split()]
        rank = int(priority)
    except ValueError:
        return None
    if not name or kind not in ZONE_KINDS or not 3 <= len(points) <= MAX_POINTS:
        return None
    if any(len(p) != 2 or not (0 <= p[0] <= 1 and 0 <= p[1] <= 1) for p in points):
        return None
    return {"name": name, "kind": kind, "priority": rank, "points": points}


def parse_zones(text: str) -> list[dict[str, Any]]:
    """The zones of a camera's text field; ValueError names the first bad line."""
    zones: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if (zone := _zone(line)) is None:
            raise ValueError(f"line {number} does not read as name | kind | priority | points")
        zones.append(zone)
    if len(zones) > MAX_ZONES or len({z["name"] for z in zones}) != len(zones):
        raise ValueError("too many zones, or two with one name")
    return zones


def format_zones(zones: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(
        f"{z['name']} | {z['kind']} | {z['priority']} | "
        + " ".join(f"{x:g},{y:g}" for x, y in z["points"])
        for z in zones
    )
