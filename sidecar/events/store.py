"""The event path's durable state: open and closed-but-unanalysed batches, the frame -> batch map,
and the verdict outbox with its per-client deliveries.

The tables are defined in sidecar/storage/schema.py. The methods are synchronous; code on the
event loop calls them through `run` (the state file's own thread). A frame joining a batch is one
row (plus the batch's fixed-size header), whatever the batch's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..domain import FrameObservation, Verdict
from ..storage.database import StateDatabase
from .batching import OpenBatch
from .payloads import (
    batch_from_json,
    batch_to_json,
    frame_row_from_json,
    frame_row_to_json,
    verdict_from_json,
    verdict_to_json,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")

# Frame -> batch records are kept this long (longer than any client's replay of a frame).
BATCHED_FRAME_RETENTION_S = 2 * 24 * 3600
# Verdicts (acknowledged or not) are kept this long, then pruned: a client away for longer
# misses them.
VERDICT_RETENTION_S = 7 * 24 * 3600

# A verdict is owed to every client that sends frames of its camera (and was seen within the
# retention) when it is made; a client saying Hello is also owed every verdict of its cameras that
# nobody has acknowledged yet (so a client added later does not get the others' history).
_PENDING_FOR = """
SELECT v.payload FROM deliveries d JOIN verdicts v USING (verdict_id)
WHERE d.client_id = :client AND d.acked_at IS NULL AND v.created_at <= :older_than
ORDER BY v.created_at
"""
# Verdicts nobody has acknowledged, or that a connected client still has to acknowledge.
_PENDING_COUNT = """
SELECT COUNT(*) FROM verdicts v
WHERE v.created_at >= ? AND (
    v.acked_at IS NULL
    OR EXISTS (SELECT 1 FROM deliveries d WHERE d.verdict_id = v.verdict_id
               AND d.acked_at IS NULL AND d.client_id IN (SELECT value FROM json_each(?))))
"""


class EventStore:
    def __init__(self, database: StateDatabase) -> None:
        self.database = database
        self._db = database.connection

    def now(self) -> float:
        """The state file's clock (epoch seconds)."""
        return self.database.now()

    def close(self) -> None:
        self.database.close()

    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Call one of these methods on the state file's thread (from the event loop)."""
        return await self.database.run(fn, *args, **kwargs)

    # -- batches -------------------------------------------------------------------------------
    def append_frame(self, header: OpenBatch, frame: FrameObservation, seq: int) -> None:
        """Frame number `seq` joins the batch; `header` is the batch after the join (its frames
        are not read). One transaction: the frame's row, its frame -> batch record, the header."""
        now = self.now()
        with self.database.transaction():
            self._db.execute(
                "INSERT INTO batches (batch_id, camera_id, state, payload, updated_at) "
                "VALUES (?, ?, 'open', ?, ?) ON CONFLICT (batch_id) DO UPDATE SET "
                "payload = excluded.payload, updated_at = excluded.updated_at",
                (header.batch_id, header.camera_id, batch_to_json(header), now),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO batch_frames (batch_id, seq, payload) VALUES (?, ?, ?)",
                (header.batch_id, seq, frame_row_to_json(frame)),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO batched_frames (frame_key, batch_id, added_at) "
                "VALUES (?, ?, ?)",
                (_frame_key(header.camera_id, frame.frame_id), header.batch_id, now),
            )

    def batch_of_frame(self, camera_id: str, frame_id: str) -> str:
        """The batch a frame already joined ('' if none)."""
        row = self._db.execute(
            "SELECT batch_id FROM batched_frames WHERE frame_key = ?",
            (_frame_key(camera_id, frame_id),),
        ).fetchone()
        return str(row[0]) if row else ""

    def mark_closed(self, batch: OpenBatch, reason: str) -> None:
        self._db.execute(
            "INSERT INTO batches (batch_id, camera_id, state, close_reason, payload, updated_at) "
            "VALUES (?, ?, 'closed', ?, ?, ?) ON CONFLICT (batch_id) DO UPDATE SET "
            "state = 'closed', close_reason = excluded.close_reason, payload = excluded.payload, "
            "updated_at = excluded.updated_at",
            (batch.batch_id, batch.camera_id, reason, batch_to_json(batch), self.now()),
        )

    def load_batches(self) -> tuple[list[OpenBatch], list[tuple[OpenBatch, str]]]:
        """(open batches, closed batches still waiting for a verdict with their close reason)."""
        opened, closed = [], []
        for batch_id, state, reason, payload in self._db.execute(
            "SELECT batch_id, state, close_reason, payload FROM batches ORDER BY updated_at"
        ).fetchall():
            rows = self._db.execute(
                "SELECT payload FROM batch_frames WHERE batch_id = ? ORDER BY seq", (batch_id,)
            )
            batch = batch_from_json(payload, [frame_row_from_json(row[0]) for row in rows])
            if state == "open":
                opened.append(batch)
            else:
                closed.append((batch, reason))
        return opened, closed

    # -- verdicts ------------------------------------------------------------------------------
    def add_verdict(self, verdict: Verdict, *, finishes_batch: bool) -> bool:
        """Store a verdict (and drop its batch if this is the batch's final verdict) atomically.

        Returns False when a verdict with this id already exists (then nothing changes)."""
        with self.database.transaction():
            now = self.now()
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO verdicts "
                "(verdict_id, event_id, camera_id, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    verdict.verdict_id,
                    verdict.event_id,
                    verdict.camera_id,
                    verdict_to_json(verdict),
                    now,
                ),
            )
            if cursor.rowcount == 1:
                self._db.execute(
                    "INSERT OR IGNORE INTO deliveries (verdict_id, client_id, acked_at) "
                    "SELECT ?, c.client_id, NULL FROM clients c JOIN client_cameras cc "
                    "ON cc.client_id = c.client_id WHERE c.last_seen >= ? AND cc.camera_id = ?",
                    (verdict.verdict_id, now - VERDICT_RETENTION_S, verdict.camera_id),
                )
            if finishes_batch:
                self._db.execute("DELETE FROM batches WHERE batch_id = ?", (verdict.batch_id,))
                self._db.execute(
                    "DELETE FROM batch_frames WHERE batch_id = ?", (verdict.batch_id,)
                )
        return cursor.rowcount == 1

    def has_verdict(self, verdict_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM verdicts WHERE verdict_id = ?", (verdict_id,)
        ).fetchone()
        return row is not None

    def register_client(self, client_id: str) -> None:
        now = self.now()
        with self.database.transaction():
            self._db.execute(
                "INSERT INTO clients (client_id, first_seen, last_seen) VALUES (?, ?, ?) "
                "ON CONFLICT (client_id) DO UPDATE SET last_seen = excluded.last_seen",
                (client_id, now, now),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries (verdict_id, client_id, acked_at) "
                "SELECT verdict_id, ?, NULL FROM verdicts "
                "WHERE acked_at IS NULL AND created_at >= ? "
                "AND camera_id IN (SELECT camera_id FROM client_cameras WHERE client_id = ?)",
                (client_id, now - VERDICT_RETENTION_S, client_id),
            )

    def client_cameras(self) -> set[tuple[str, str]]:
        return {(str(c), str(k)) for c, k in self._db.execute("SELECT * FROM client_cameras")}

    def note_client_camera(self, client_id: str, camera_id: str) -> None:
        """Remember that a client sends frames of a camera (idempotent)."""
        self._db.execute(
            "INSERT OR IGNORE INTO client_cameras (client_id, camera_id) VALUES (?, ?)",
            (client_id, camera_id),
        )

    def pending_for(self, client_id: str, older_than: float | None = None) -> list[Verdict]:
        """Verdicts owed to this client that it has not acknowledged, oldest first."""
        rows = self._db.execute(
            _PENDING_FOR,
            {"client": client_id, "older_than": self.now() if older_than is None else older_than},
        ).fetchall()
        return [verdict_from_json(row[0]) for row in rows]

    def pending_count(self, connected: set[str]) -> int:
        row = self._db.execute(
            _PENDING_COUNT, (self.now() - VERDICT_RETENTION_S, json.dumps(sorted(connected)))
        ).fetchone()
        return int(row[0])

    def ack(self, client_id: str, verdict_ids: list[str]) -> int:
        """Record a client's acknowledgements; returns how many were new."""
        now = self.now()
        changed = 0
        with self.database.transaction():
            for verdict_id in verdict_ids:
                if not self.has_verdict(verdict_id):
                    continue
                changed += self._db.execute(
                    "INSERT INTO deliveries (verdict_id, client_id, acked_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (verdict_id, client_id) DO UPDATE "
                    "SET acked_at = excluded.acked_at WHERE acked_at IS NULL",
                    (verdict_id, client_id, now),
                ).rowcount
                self._db.execute(
                    "UPDATE verdicts SET acked_at = ? WHERE verdict_id = ? AND acked_at IS NULL",
                    (now, verdict_id),
                )
        return changed

    def prune(self) -> None:
        cutoff = self.now()
        with self.database.transaction():
            self._db.execute(
                "DELETE FROM batched_frames WHERE added_at < ?",
                (cutoff - BATCHED_FRAME_RETENTION_S,),
            )
            self._db.execute(
                "DELETE FROM deliveries WHERE verdict_id IN "
                "(SELECT verdict_id FROM verdicts WHERE created_at < ?)",
                (cutoff - VERDICT_RETENTION_S,),
            )
            self._db.execute(
                "DELETE FROM verdicts WHERE created_at < ?", (cutoff - VERDICT_RETENTION_S,)
            )


def _frame_key(camera_id: str, frame_id: str) -> str:
    return f"{camera_id}\x1f{frame_id}"

