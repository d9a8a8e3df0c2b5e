"""Verdict history in the entry's database (database.py holds its tables).

A verdict is stored before it is acknowledged to the sidecar, once: a verdict id already stored is
acknowledged again but not applied twice. The store decides, in the same transaction, whether the
verdict announces its event (`verdicts.decide`) and whether it becomes its camera's current verdict
(risk sensors and snapshot, restored from here at start). History is kept for VERDICTS_KEPT_DAYS
and at most VERDICTS_KEPT verdicts; each camera's current verdict is kept regardless.

Every method blocks: run them in the executor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..const import VERDICTS_KEPT, VERDICTS_KEPT_DAYS
from ..ingest.imaging import render_detections
from ..verdicts.records import VerdictRecord
from ..verdicts.rule import Decision, PriorVerdict, decide
from .database import Database
from .frame_queue import FrameQueue


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """What storing a new verdict decided."""

    decision: Decision
    # It is now its camera's current verdict (sensors, snapshot).
    current: bool
    # The camera's snapshot after this verdict (rendered JPEG), if it has one.
    snapshot: bytes | None
    snapshot_at: float | None


@dataclass(frozen=True, slots=True)
class CameraRisk:
    """A camera's current verdict and snapshot, as restored at start."""

    camera_id: str
    record: VerdictRecord
    snapshot: bytes | None
    snapshot_at: float | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored verdict."""

    record: VerdictRecord
    received_at: float
    announced: bool


def render_snapshot(frames: FrameQueue, record: VerdictRecord) -> bytes | None:
    """The verdict's snapshot frame with its detections drawn, None if the frame is gone."""
    frame_id = record.message.snapshot_frame_id
    if not frame_id:
        return None
    image = frames.frame_image(frame_id)
    if image is None:
        return None
    try:
        return render_detections(image, record.snapshot_boxes)
    except (OSError, ValueError, SyntaxError):
        return None


class VerdictStore:
    """Verdict rows of one entry's database."""

    def __init__(
        self, database: Database, frames: FrameQueue, *, kept_days: float = VERDICTS_KEPT_DAYS
    ) -> None:
        """Use `database` (opened by its owner); snapshots are drawn on `frames`' images;
        verdicts are kept `kept_days` (the retention option)."""
        self.database = database
        self.frames = frames
        self.kept_days = kept_days

    def has(self, verdict_id: str) -> bool:
        """Whether this verdict is stored already."""
        with self.database.connection() as db:
            row = db.execute(
                "SELECT 1 FROM verdicts WHERE verdict_id = ?", (verdict_id,)
            ).fetchone()
        return row is not None

    def receive(self, record: VerdictRecord) -> StoredOutcome | None:
        """Render the snapshot and store the verdict; None if it was stored before."""
        if self.has(record.verdict_id):
            return None
        return self.add(record, render_snapshot(self.frames, record))

    def add(self, record: VerdictRecord, snapshot: bytes | None) -> StoredOutcome | None:
        """Store a verdict and decide what it does; None if it was stored before."""
        now = time.time()
        with self.database.transaction() as db:
            inserted = db.execute(
                "INSERT OR IGNORE INTO verdicts (verdict_id, event_id, camera_id, fast_path,"
                " level_rank, announced, received_at, verdict, anomaly, baseline_days, zones)"
                " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                (
                    record.verdict_id,
                    record.event_id,
                    record.camera_id,
                    int(record.fast_path),
                    record.rank,
                    now,
                    record.message.SerializeToString(),
                    float(record.message.anomaly),
                    float(record.message.baseline_days),
                    json.dumps(list(record.message.zones)),
                ),
            ).rowcount
            if not inserted:
                return None
            # Counted here, once per stored verdict, so they survive sidecar restarts.
            self.frames.count_in(db, "verdicts_received")
            if record.fallback:
                self.frames.count_in(db, "fallback_verdicts")
            prior = [
                PriorVerdict(fast_path=bool(r[0]), rank=int(r[1]), announced=bool(r[2]))
                for r in db.execute(
                    "SELECT fast_path, level_rank, announced FROM verdicts"
                    " WHERE event_id = ? AND verdict_id != ?",
                    (record.event_id, record.verdict_id),
                )
            ]
            decision = decide(record, prior)
            if decision.announce:
                db.execute(
                    "UPDATE verdicts SET announced = 1 WHERE verdict_id = ?", (record.verdict_id,)
                )
            row = db.execute(
                "SELECT verdict, snapshot, snapshot_at FROM camera_risk WHERE camera_id = ?",
                (record.camera_id,),
            ).fetchone()
            current = decision.show and (
                row is None or record.sort_key >= VerdictRecord.from_bytes(row[0]).sort_key
            )
            shown: bytes | None = bytes(row[1]) if row is not None and row[1] else None
            shown_at: float | None = row[2] if row is not None else None
            if current:
                same_event = row is not None and (
                    VerdictRecord.from_bytes(row[0]).event_id == record.event_id
                )
                if snapshot is not None or not same_event:
                    # A new event never shows an older event's picture; the batch verdict of the
                    # same event keeps the fast-path picture if its own frame is gone.
                    shown, shown_at = snapshot, now if snapshot is not None else None
                db.execute(
                    "INSERT OR REPLACE INTO camera_risk (camera_id, verdict_id, verdict, snapshot,"
                    " snapshot_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        record.camera_id,
                        record.verdict_id,
                        record.message.SerializeToString(),
                        shown,
                        shown_at,
                    ),
                )
            db.execute(
                "DELETE FROM verdicts WHERE received_at < ?", (now - self.kept_days * 86400,)
            )
            db.execute(
                "DELETE FROM verdicts WHERE verdict_id IN (SELECT verdict_id FROM verdicts"
                " ORDER BY received_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (VERDICTS_KEPT,),
            )
        return StoredOutcome(
            decision=decision, current=current, snapshot=shown, snapshot_at=shown_at
        )

    def camera_risks(self) -> list[CameraRisk]:
        """Every camera's current verdict and snapshot."""
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT camera_id, verdict, snapshot, snapshot_at FROM camera_risk"
            ).fetchall()
        return [
            CameraRisk(
                camera_id=r[0],
                record=VerdictRecord.from_bytes(bytes(r[1])),
                snapshot=bytes(r[2]) if r[2] else None,
                snapshot_at=r[3],
            )
            for r in rows
        ]

    def history(self, limit: int) -> list[HistoryEntry]:
        """The newest `limit` stored verdicts, newest first."""
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT verdict, received_at, announced FROM verdicts"
                " ORDER BY received_at DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            HistoryEntry(VerdictRecord.from_bytes(bytes(r[0])), float(r[1]), bool(r[2]))
            for r in rows
        ]

    def count(self) -> int:
        """Stored verdicts."""
        with self.database.connection() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()
        return int(count)
