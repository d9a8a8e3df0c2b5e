"""A verdict's enrichment as HA attributes: what image models saw in the batch's key frames.

Bounded: HA's recorder warns above 16 KiB of state attributes, and every text here was written by
a model reading camera images (untrusted, any length), so lists and strings are capped.
"""

from __future__ import annotations

from typing import Any

from homeassistant.util import dt as dt_util

from ..link.proto import secmon_pb2

MAX_CAPTION = 1000
MAX_TEXT = 64
MAX_REASON = 200
MAX_OBJECTS = 10
MAX_ATTRIBUTES = 8
MAX_MATCHES = 3
MAX_ENRICHERS = 10

# The attributes this module adds; the bulky ones stay out of the recorder.
ENRICHMENT_KEYS = (
    "caption",
    "scene",
    "objects",
    "identities",
    "plates",
    "enrichers",
    "enrichment_ms",
)
UNRECORDED_KEYS = frozenset({"objects", "enrichers"})


def clip(text: str, limit: int) -> str:
    """At most `limit` characters (an ellipsis marks a cut)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _attributes(items: Any) -> dict[str, str]:
    return {
        clip(a.name, MAX_TEXT): clip(a.value, MAX_TEXT)
        for a in list(items)[:MAX_ATTRIBUTES]
        if a.name and a.value
    }


def _match(match: secmon_pb2.IdentityMatch) -> dict[str, Any]:
    seen = match.seen_at
    seen_at = (
        dt_util.utc_from_timestamp(seen.seconds + seen.nanos / 1e9).isoformat()
        if seen.seconds or seen.nanos
        else None
    )
    return {
        "camera_id": clip(match.camera_id, MAX_TEXT),
        "camera_name": clip(match.camera_name, MAX_TEXT),
        "seen_at": seen_at,
        "similarity": round(float(match.similarity), 3),
    }


def _object(obj: secmon_pb2.EnrichedObject) -> dict[str, Any]:
    """One object; fields a model did not fill are left out."""
    out: dict[str, Any] = {
        "label": clip(obj.label, MAX_TEXT),
        "confidence": round(float(obj.confidence), 3),
    }
    if attributes := _attributes(obj.attributes):
        out["attributes"] = attributes
    if obj.identity:
        out["identity"] = clip(obj.identity, MAX_TEXT)
        out["identity_id"] = int(obj.identity_id)
        out["visits_24h"] = int(obj.visits_24h)
        if obj.matches:
            out["also_seen"] = [_match(m) for m in list(obj.matches)[:MAX_MATCHES]]
    if obj.plate:
        out["plate"] = clip(obj.plate, MAX_TEXT)
        if obj.known_plate:
            out["known_plate"] = clip(obj.known_plate, MAX_TEXT)
    for name in ("posture", "distance", "movement"):
        if value := getattr(obj, name):
            out[name] = clip(value, MAX_TEXT)
    return out


def enrichment_attributes(message: secmon_pb2.Verdict) -> dict[str, Any]:
    """The enrichment attributes of a verdict (empty values when enrichment was off)."""
    objects = list(message.objects)[:MAX_OBJECTS]
    identities: list[str] = []
    plates: list[dict[str, str | None]] = []
    for obj in objects:
        if obj.identity and (name := clip(obj.identity, MAX_TEXT)) not in identities:
            identities.append(name)
        if obj.plate:
            plates.append(
                {
                    "plate": clip(obj.plate, MAX_TEXT),
                    "known": clip(obj.known_plate, MAX_TEXT) or None,
                }
            )
    return {
        "caption": clip(message.caption, MAX_CAPTION) or None,
        "scene": _attributes(message.scene_attributes),
        "objects": [_object(obj) for obj in objects],
        "identities": identities,
        "plates": plates,
        "enrichers": [
            {
                "name": clip(run.name, MAX_TEXT),
                "status": clip(run.status, MAX_TEXT),
                "reason": clip(run.reason, MAX_REASON),
                "ms": round(float(run.ms), 1),
            }
            for run in list(message.enrichers)[:MAX_ENRICHERS]
        ],
        "enrichment_ms": round(float(message.enrichment_ms), 1),
    }
