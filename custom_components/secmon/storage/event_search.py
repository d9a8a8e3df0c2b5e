"""Security events as stored verdicts, searched: one event per `event_id`, shown by its current
verdict (the batch verdict over the fast-path one, then the newest stored).

Every function blocks: run them in the executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeassistant.util import dt as dt_util

from ..verdicts.records import VerdictRecord
from .database import Database


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What `secmon.search_events` asks for; empty fields match everything."""

    camera_ids: frozenset[str] = frozenset()
    start: datetime | None = None
    end: datetime | None = None
    min_rank: int = 0
    labels: frozenset[str] = frozenset()
    text: str = ""
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class Feedback:
    """The owner's word on an event."""

    verdict: str
    note: str
    given_at: float


@dataclass(slots=True)
class StoredEvent:
    """An event and all its stored verdicts (oldest first)."""

    event_id: str
    verdicts: list[tuple[VerdictRecord, float]] = field(default_factory=list)
    feedback: Feedback | None = None

    @property
    def current(self) -> VerdictRecord:
        """The verdict that describes the event now: the newest stored batch verdict, else the
        newest stored fast-path one (as the timeline shows it)."""
        records = [record for record, _ in self.verdicts]
        return ([r for r in records if not r.fast_path] or records)[-1]

    @property
    def started(self) -> float:
        """When the event began (epoch seconds; the first verdict's arrival if unknown)."""
        starts = [r.started_at.timestamp() for r, _ in self.verdicts if r.started_at]
        return min(starts) if starts else min(received for _, received in self.verdicts)

    def matches(self, query: EventQuery) -> bool:
        """Whether the event answers the query."""
        current = self.current
        if query.camera_ids and current.camera_id not in query.camera_ids:
            return False
        if current.rank < query.min_rank:
            return False
        if query.start is not None and self.started < query.start.timestamp():
            return False
        if query.end is not None and self.started > query.end.timestamp():
            return False
        if query.labels and not query.labels.intersection(current.labels):
            return False
        if query.text:
            haystack = " ".join(
                part
                for record, _ in self.verdicts
                for part in (record.message.summary, record.message.reasoning)
            ).casefold()
            if any(word not in haystack for word in query.text.casefold().split()):
                return False
        return True

    def as_dict(self, *, with_verdicts: bool = False) -> dict[str, Any]:
        """Service response data."""
        current = self.current
        data: dict[str, Any] = {
            **current.attributes(is_update=len(self.verdicts) > 1),
            "camera_id": current.camera_id,
            "camera_name": current.message.camera_name,
            "verdict_count": len(self.verdicts),
        }
        data.pop("is_update")
        data["feedback"] = (
            {
                "verdict": self.feedback.verdict,
                "note": self.feedback.note,
                "given_at": dt_util.utc_from_timestamp(self.feedback.given_at).isoformat(),
            }
            if self.feedback is not None
            else None
        )
        if with_verdicts:
            data["verdicts"] = [
                {**record.attributes(is_update=i > 0), "received_at": received}
                for i, (record, received) in enumerate(self.verdicts)
            ]
        return data


def _events(database: Database, where: str = "", args: tuple[Any, ...] = ()) -> list[StoredEvent]:
    with database.connection() as db:
        rows = db.execute(
            f"SELECT event_id, verdict, received_at FROM verdicts {where}"
            " ORDER BY received_at, rowid",
            args,
        ).fetchall()
        feedback = {
            r[0]: Feedback(verdict=r[1], note=r[2], given_at=float(r[3]))
            for r in db.execute("SELECT event_id, verdict, note, given_at FROM feedback")
        }
    events: dict[str, StoredEvent] = {}
    for event_id, blob, received in rows:
        events.setdefault(
            event_id, StoredEvent(event_id, feedback=feedback.get(event_id))
        ).verdicts.append((VerdictRecord.from_bytes(bytes(blob)), float(received)))
    return list(events.values())


def search_events(database: Database, query: EventQuery) -> tuple[list[StoredEvent], int]:
    """One page of the matching events, newest first, and how many match in all."""
    found = [event for event in _events(database) if event.matches(query)]
    found.sort(key=lambda e: e.started, reverse=True)
    return found[query.offset : query.offset + query.limit], len(found)


def get_event(database: Database, event_id: str) -> StoredEvent | None:
    """One event with all its verdicts, None if no verdict of it is stored."""
    events = _events(database, "WHERE event_id = ?", (event_id,))
    return events[0] if events else None


def set_feedback(database: Database, event_id: str, verdict: str, note: str) -> bool:
    """Store (or replace) the owner's feedback on an event; False if no such event is stored."""
    with database.transaction() as db:
        if db.execute("SELECT 1 FROM verdicts WHERE event_id = ?", (event_id,)).fetchone() is None:
            return False
        db.execute(
            "INSERT OR REPLACE INTO feedback (event_id, verdict, note, given_at)"
            " VALUES (?, ?, ?, ?)",
            (event_id, verdict, note, time.time()),
        )
    return True
