"""Verdicts as the integration keeps them: a sidecar `Verdict` decoded once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.util import dt as dt_util

from ..const import RISK_LEVELS
from ..ingest.imaging import Box
from ..link.convert import boxes_of
from ..link.proto import secmon_pb2
from .enrichment import MAX_TEXT, clip, enrichment_attributes

# Zone names listed per event (the options allow 32 zones per camera).
MAX_ZONES = 32
# The sidecar writes at most 200 and 600 characters; anything longer is cut (a sidecar that
# sends megabytes must not put them in states, events, notifications and the database).
MAX_SUMMARY_CHARS = 1000
MAX_REASONING_CHARS = 4000

_LEVEL_BY_ENUM: dict[int, str] = {
    secmon_pb2.RISK_LEVEL_LOW: "low",
    secmon_pb2.RISK_LEVEL_MEDIUM: "medium",
    secmon_pb2.RISK_LEVEL_HIGH: "high",
    secmon_pb2.RISK_LEVEL_CRITICAL: "critical",
}


def level_for_score(score: int) -> str:
    """The level of a score (the contract's bands), for verdicts that carry no level."""
    if score >= 85:
        return "critical"
    if score >= 60:
        return "high"
    if score >= 30:
        return "medium"
    return "low"


def level_rank(level: str) -> int:
    """0 for low ... 3 for critical."""
    return RISK_LEVELS.index(level)


def _time(ts: Any) -> datetime | None:
    if not ts.seconds and not ts.nanos:
        return None
    return dt_util.utc_from_timestamp(ts.seconds + ts.nanos / 1e9)


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """A verdict from the sidecar, decoded once."""

    message: secmon_pb2.Verdict
    risk_score: int
    risk_level: str
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime | None

    @classmethod
    def from_message(cls, message: secmon_pb2.Verdict) -> VerdictRecord:
        """Decode; clamp the score, take the level from the score if it is missing, cut the
        summary and reasoning to their bounds."""
        if len(message.summary) > MAX_SUMMARY_CHARS:
            message.summary = clip(message.summary, MAX_SUMMARY_CHARS)
        if len(message.reasoning) > MAX_REASONING_CHARS:
            message.reasoning = clip(message.reasoning, MAX_REASONING_CHARS)
        score = min(max(int(message.risk_score), 0), 100)
        level = _LEVEL_BY_ENUM.get(message.risk_level) or level_for_score(score)
        return cls(
            message=message,
            risk_score=score,
            risk_level=level,
            started_at=_time(message.started_at),
            ended_at=_time(message.ended_at),
            created_at=_time(message.created_at),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> VerdictRecord:
        """From the serialized message in the store."""
        return cls.from_message(secmon_pb2.Verdict.FromString(data))

    @property
    def verdict_id(self) -> str:
        """The idempotency and acknowledgement key."""
        return self.message.verdict_id

    @property
    def event_id(self) -> str:
        """The security event (shared by a fast-path verdict and its batch verdict)."""
        return self.message.event_id or self.message.verdict_id

    @property
    def camera_id(self) -> str:
        """Normalised camera id."""
        return self.message.camera_id

    @property
    def fast_path(self) -> bool:
        """An immediate verdict for one telling detection."""
        return self.message.fast_path

    @property
    def fallback(self) -> bool:
        """The LLM was unavailable; score and level are a conservative default."""
        return self.message.fallback

    @property
    def rank(self) -> int:
        """Level as a number."""
        return level_rank(self.risk_level)

    @property
    def sort_key(self) -> tuple[float, int, float]:
        """Later events first, then the batch verdict over the fast one, then the newer one."""
        started = self.started_at.timestamp() if self.started_at else 0.0
        created = self.created_at.timestamp() if self.created_at else 0.0
        return (started, 0 if self.fast_path else 1, created)

    @property
    def labels(self) -> dict[str, int]:
        """Detected labels with their counts."""
        return {item.label: int(item.count) for item in self.message.labels}

    @property
    def zones(self) -> list[str]:
        """The owner's zones the batch's detections were in, by priority."""
        return [clip(z, MAX_TEXT) for z in list(self.message.zones)[:MAX_ZONES]]

    @property
    def snapshot_boxes(self) -> list[Box]:
        """The snapshot frame's detections, to draw."""
        return boxes_of(self.message.snapshot_detections)

    def attributes(self, *, is_update: bool) -> dict[str, Any]:
        """The event entity's attributes and the bus events' payload (without camera ids), with
        what the image models saw (verdicts/enrichment.py)."""
        return {
            "event_id": self.event_id,
            "verdict_id": self.verdict_id,
            "risk_score": self.risk_score,
            "risk_level": self.risk_level,
            "summary": self.message.summary,
            "reasoning": self.message.reasoning,
            "labels": self.labels,
            "fast_path": self.fast_path,
            "fallback": self.fallback,
            "is_update": is_update,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            # Context: how unusual the batch was (0 usual .. 1 never seen at this camera and
            # hour of the week; 0 while the baseline has under a week of history, baseline_days)
            # and the owner's zones its detections were in, by priority.
            "anomaly": round(float(self.message.anomaly), 2),
            "baseline_days": round(float(self.message.baseline_days), 1),
            "zones": self.zones,
            **enrichment_attributes(self.message),
        }
