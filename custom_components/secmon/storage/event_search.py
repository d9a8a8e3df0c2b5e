"""Security events as stored verdicts: one event per `event_id`, shown by its current verdict (the
batch verdict over the fast-path one, then the newest stored). The services, the calendar and
Assist search them; the timeline card and the media browser page through them, newest first by
when the shown verdict was stored (pages continue below a `before` time, the last item's
`stored_at`).

Every function blocks: run them in the executor.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from homeassistant.util import dt as dt_util

from ..verdicts.records import VerdictRecord
from .database import Database
from .verdict_store import HistoryEntry

# The verdict that stands for its event: no other verdict of the event beats it (batch over fast
# path, then newer); `StoredEvent.shown` picks the same one.
_SHOWN = """NOT EXISTS (SELECT 1 FROM verdicts w WHERE w.event_id = v.event_id
    AND (w.fast_path < v.fast_path OR (w.fast_path = v.fast_path AND
    (w.received_at > v.received_at OR (w.received_at = v.received_at AND w.rowid > v.rowid)))))"""


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What `secmon.search_events` asks for; empty fields match everything."""

    camera_ids: frozenset[str] = frozenset()
    start: datetime | None = None
    end: datetime | None = None
    min_rank: int = 0
    labels: frozenset[str] = frozenset()
    # Zone names (any case); an event matches when it was in one of them.
    zones: frozenset[str] = frozenset()
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
    """An event and all its stored verdicts (in the order they were stored)."""

    event_id: str
    verdicts: list[HistoryEntry] = field(default_factory=list)
    feedback: Feedback | None = None

    @property
    def shown(self) -> HistoryEntry:
        """The stored verdict that stands for the event: the newest batch verdict, else the
        newest fast-path one."""
        return ([v for v in self.verdicts if not v.record.fast_path] or self.verdicts)[-1]

    @property
    def current(self) -> VerdictRecord:
        """The verdict that describes the event now."""
        return self.shown.record

    @property
    def stored_at(self) -> float:
        """When the current verdict was stored (epoch seconds)."""
        return self.shown.received_at

    @property
    def announced(self) -> bool:
        """Whether the current verdict announced the event."""
        return self.shown.announced

    @property
    def started(self) -> float:
        """When the event began (epoch seconds; the first verdict's arrival if unknown)."""
        starts = [v.record.started_at.timestamp() for v in self.verdicts if v.record.started_at]
        return min(starts) if starts else min(v.received_at for v in self.verdicts)

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
        if query.zones and not {z.casefold() for z in query.zones}.intersection(
            z.casefold() for z in current.message.zones
        ):
            return False
        if query.text:
            haystack = " ".join(
                part
                for v in self.verdicts
                for part in (
                    v.record.message.summary,
                    v.record.message.reasoning,
                    v.record.message.caption,
                )
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
                {**v.record.attributes(is_update=i > 0), "received_at": v.received_at}
                for i, v in enumerate(self.verdicts)
            ]
        return data


def _events(
    database: Database,
    where: str = "",
    args: Collection[object] = (),
    *,
    newest_first: bool = False,
) -> list[StoredEvent]:
    """The events with a verdict in `where`, in order of their first stored verdict, or newest
    first by their shown verdict."""
    with database.connection() as db:
        rows = db.execute(
            f"SELECT event_id, verdict, received_at, announced FROM verdicts {where}"
            " ORDER BY received_at, rowid",
            tuple(args),
        ).fetchall()
        feedback = {
            r[0]: Feedback(verdict=r[1], note=r[2], given_at=float(r[3]))
            for r in db.execute("SELECT event_id, verdict, note, given_at FROM feedback")
        }
    events: dict[str, StoredEvent] = {}
    position: dict[int, int] = {}
    for n, (event_id, blob, received, announced) in enumerate(rows):
        stored = HistoryEntry(
            VerdictRecord.from_bytes(bytes(blob)), float(received), bool(announced)
        )
        position[id(stored)] = n
        events.setdefault(
            event_id, StoredEvent(event_id, feedback=feedback.get(event_id))
        ).verdicts.append(stored)
    if newest_first:
        return sorted(events.values(), key=lambda e: position[id(e.shown)], reverse=True)
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


def list_events(
    database: Database,
    *,
    cameras: Collection[str] | None = None,
    before: float | None = None,
    after: float | None = None,
    zone: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> list[StoredEvent]:
    """Events newest first, of `cameras` (all if None), whose shown verdict was stored in
    (`after`, `before`) and, with `zone`, was in that zone (its name in any case); `offset`
    skips that many of the newest."""
    where = [_SHOWN]
    params: list[object] = []
    if cameras is not None:
        if not cameras:
            return []
        where.append(f"v.camera_id IN ({','.join('?' * len(cameras))})")
        params.extend(cameras)
    if before is not None:
        where.append("v.received_at < ?")
        params.append(before)
    if after is not None:
        where.append("v.received_at >= ?")
        params.append(after)
    if zone:
        where.append("EXISTS (SELECT 1 FROM json_each(v.zones) z WHERE z.value = ? COLLATE NOCASE)")
        params.append(zone)
    params.extend((limit, offset))
    return _events(
        database,
        f"WHERE event_id IN (SELECT v.event_id FROM verdicts v WHERE {' AND '.join(where)}"
        " ORDER BY v.received_at DESC, v.rowid DESC LIMIT ? OFFSET ?)",
        params,
        newest_first=True,
    )


def get_verdict(database: Database, verdict_id: str) -> VerdictRecord | None:
    """One stored verdict, by its id."""
    with database.connection() as db:
        row = db.execute(
            "SELECT verdict FROM verdicts WHERE verdict_id = ?", (verdict_id,)
        ).fetchone()
    return VerdictRecord.from_bytes(bytes(row[0])) if row is not None else None


def stored_times(database: Database, camera_id: str) -> list[float]:
    """When each of a camera's events was stored, newest first (the media browser's days)."""
    with database.connection() as db:
        rows = db.execute(
            f"SELECT v.received_at FROM verdicts v WHERE v.camera_id = ? AND {_SHOWN}"
            " ORDER BY v.received_at DESC",
            (camera_id,),
        ).fetchall()
    return [float(r[0]) for r in rows]


def event_cameras(database: Database) -> dict[str, str]:
    """Every camera with stored events: its name by id."""
    with database.connection() as db:
        rows = db.execute("SELECT DISTINCT camera_id FROM verdicts").fetchall()
        names = dict(db.execute("SELECT camera_id, name FROM cameras").fetchall())
    return {r[0]: str(names.get(r[0], r[0])) for r in rows}


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
