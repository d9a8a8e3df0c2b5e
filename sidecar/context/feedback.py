"""The owner's feedback (secmon.feedback in Home Assistant): kept per client and event in the state
file, and the judgements of events similar to a new batch for its prompt.

Similar means: at least one label in common; then the same camera, more labels in common and a
similar time of day (within `_HOURS_APART` hours, in the home's time zone) make an event more
similar; among equals the newer judgement wins. Only judgements of the last `RECENT_S` count.
The methods are synchronous; callers on the event loop run them on the state file's thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ..storage.database import StateDatabase

DAY_S = 24 * 3600.0
RECENT_S = 90 * DAY_S
_RETENTION_S = 180 * DAY_S
_CANDIDATES = 500
_HOURS_APART = 2
VERDICTS = ("false_alarm", "confirmed")


@dataclass(frozen=True, slots=True)
class OwnerFeedback:
    event_id: str
    camera_id: str
    labels: tuple[str, ...]
    started_at: datetime
    verdict: str  # "false_alarm" or "confirmed"
    note: str
    given_at: datetime
    risk_score: int = 0
    identities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimilarFeedback:
    feedback: OwnerFeedback
    same_camera: bool
    shared_labels: tuple[str, ...]


def _hours_apart(a: datetime, b: datetime) -> int:
    apart = abs(a.hour - b.hour)
    return min(apart, 24 - apart)


class FeedbackStore:
    def __init__(self, database: StateDatabase) -> None:
        self.database = database

    def add(self, client_id: str, feedback: OwnerFeedback) -> None:
        """Keep (or replace) `client_id`'s judgement of the event."""
        if feedback.verdict not in VERDICTS:
            raise ValueError(f"unknown feedback verdict {feedback.verdict!r}")
        with self.database.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback (client_id, event_id, camera_id, labels, "
                "started_at, verdict, note, given_at, risk_score, identities) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    client_id, feedback.event_id, feedback.camera_id,
                    json.dumps(list(feedback.labels)), feedback.started_at.timestamp(),
                    feedback.verdict, feedback.note, feedback.given_at.timestamp(),
                    feedback.risk_score, json.dumps(list(feedback.identities)),
                ),
            )
            db.execute(
                "DELETE FROM feedback WHERE given_at < ?",
                (self.database.now() - _RETENTION_S,),
            )

    def counts(self, client_id: str) -> dict[str, dict[str, int]]:
        """Judgements per camera and verdict."""
        found: dict[str, dict[str, int]] = {}
        for camera, verdict, count in self.database.connection.execute(
            "SELECT camera_id, verdict, COUNT(*) FROM feedback WHERE client_id = ? "
            "GROUP BY camera_id, verdict",
            (client_id,),
        ):
            found.setdefault(camera, {})[verdict] = int(count)
        return found

    def similar(
        self, client_id: str, camera_id: str, labels: Iterable[str], start: datetime, *,
        tz: tzinfo, limit: int = 3,
    ) -> list[SimilarFeedback]:
        """The judgements most similar to a batch at `camera_id` with `labels` from `start`."""
        wanted = set(labels)
        if not wanted:
            return []
        rows = self.database.connection.execute(
            "SELECT event_id, camera_id, labels, started_at, verdict, note, given_at, "
            "risk_score, identities FROM feedback WHERE client_id = ? AND given_at >= ? "
            "ORDER BY given_at DESC LIMIT ?",
            (client_id, self.database.now() - RECENT_S, _CANDIDATES),
        ).fetchall()
        local = start.astimezone(tz)
        ranked: list[tuple[int, float, SimilarFeedback]] = []
        for row in rows:
            feedback = OwnerFeedback(
                event_id=row[0], camera_id=row[1], labels=tuple(json.loads(row[2])),
                started_at=datetime.fromtimestamp(row[3], UTC), verdict=row[4], note=row[5],
                given_at=datetime.fromtimestamp(row[6], UTC), risk_score=int(row[7]),
                identities=tuple(json.loads(row[8])),
            )
            shared = tuple(label for label in feedback.labels if label in wanted)
            if not shared:
                continue
            same = feedback.camera_id == camera_id
            close = _hours_apart(feedback.started_at.astimezone(tz), local) <= _HOURS_APART
            score = 2 * same + min(len(shared), 2) + close
            ranked.append((score, row[6], SimilarFeedback(feedback, same, shared)))
        ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [item[2] for item in ranked[:limit]]
