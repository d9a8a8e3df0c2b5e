"""Security events as the timeline card and the media browser read them from the verdict history.

An event is shown by one of its verdicts: the batch verdict once it is there, else the fast-path
one; of several, the newest. Events are ordered newest first by when that verdict was stored;
pages continue below a `before` time (the last item's `stored_at`).

Every method blocks: run them in the executor.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..verdicts.records import VerdictRecord
from .database import Database
from .frame_queue import FrameQueue
from .verdict_store import render_snapshot

# The verdict that stands for its event: no other verdict of the event beats it (batch over fast
# path, then newer).
_SHOWN = """NOT EXISTS (SELECT 1 FROM verdicts w WHERE w.event_id = v.event_id
    AND (w.fast_path < v.fast_path OR (w.fast_path = v.fast_path AND
    (w.received_at > v.received_at OR (w.received_at = v.received_at AND w.rowid > v.rowid)))))"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One security event, by the verdict that stands for it."""

    record: VerdictRecord
    stored_at: float
    announced: bool


class EventHistory:
    """Read-only queries over the verdict history of one entry's database."""

    def __init__(self, database: Database, frames: FrameQueue) -> None:
        """Read `database`; snapshots are drawn on `frames`' images."""
        self.database = database
        self.frames = frames

    def events(
        self,
        *,
        cameras: Collection[str] | None = None,
        before: float | None = None,
        after: float | None = None,
        limit: int = 20,
    ) -> list[StoredEvent]:
        """Events newest first, of `cameras` (all if None), stored in (`after`, `before`)."""
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
        params.append(limit)
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT v.verdict, v.received_at, v.announced FROM verdicts v"
                f" WHERE {' AND '.join(where)}"
                " ORDER BY v.received_at DESC, v.rowid DESC LIMIT ?",
                params,
            ).fetchall()
        return [_event(row) for row in rows]

    def event(self, event_id: str) -> StoredEvent | None:
        """One event, by its id."""
        with self.database.connection() as db:
            row = db.execute(
                "SELECT v.verdict, v.received_at, v.announced FROM verdicts v"
                f" WHERE v.event_id = ? AND {_SHOWN}",
                (event_id,),
            ).fetchone()
        return _event(row) if row is not None else None

    def verdict(self, verdict_id: str) -> VerdictRecord | None:
        """One stored verdict, by its id."""
        with self.database.connection() as db:
            row = db.execute(
                "SELECT verdict FROM verdicts WHERE verdict_id = ?", (verdict_id,)
            ).fetchone()
        return VerdictRecord.from_bytes(bytes(row[0])) if row is not None else None

    def stored_times(self, camera_id: str) -> list[float]:
        """When each of a camera's events was stored, newest first (the media browser's days)."""
        with self.database.connection() as db:
            rows = db.execute(
                f"SELECT v.received_at FROM verdicts v WHERE v.camera_id = ? AND {_SHOWN}"
                " ORDER BY v.received_at DESC",
                (camera_id,),
            ).fetchall()
        return [float(r[0]) for r in rows]

    def cameras(self) -> dict[str, str]:
        """Every camera with stored events: its name by id."""
        with self.database.connection() as db:
            rows = db.execute("SELECT DISTINCT camera_id FROM verdicts").fetchall()
            names = dict(db.execute("SELECT camera_id, name FROM cameras").fetchall())
        return {r[0]: str(names.get(r[0], r[0])) for r in rows}

    def snapshot(self, verdict_id: str) -> bytes | None:
        """A verdict's snapshot with its detections drawn; None if it has none or it is gone."""
        record = self.verdict(verdict_id)
        return render_snapshot(self.frames, record) if record is not None else None

    def frame(self, verdict_id: str, index: int) -> bytes | None:
        """The `index`th frame of a verdict's event, as stored; None if there is none."""
        record = self.verdict(verdict_id)
        if record is None or not 0 <= index < len(record.message.frame_ids):
            return None
        return self.frames.frame_image(record.message.frame_ids[index])


def _event(row: Sequence[object]) -> StoredEvent:
    data, stored_at, announced = row
    assert isinstance(data, bytes)
    assert isinstance(stored_at, float | int)
    return StoredEvent(VerdictRecord.from_bytes(data), float(stored_at), bool(announced))
