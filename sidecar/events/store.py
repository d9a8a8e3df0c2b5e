"""The sidecar's small durable state: open and closed-but-unanalysed batches, and the verdict
outbox.

SQLite in `--data-dir`, WAL mode. Writes are a few KB and take well under a millisecond, so they
run inline on the event loop; the model work is what goes to threads.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..domain import Verdict
from .batching import OpenBatch
from .payloads import batch_from_json, batch_to_json, verdict_from_json, verdict_to_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    camera_id TEXT NOT NULL,
    state TEXT NOT NULL,            -- 'open' or 'closed' (waiting for its verdict)
    close_reason TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    verdict_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    acked_at REAL
);
CREATE INDEX IF NOT EXISTS verdicts_pending ON verdicts (acked_at, created_at);
-- Verdicts are delivered to every client (Hello.client_id) until that client acknowledges them.
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
-- The cameras each client sends frames of: a client is owed the verdicts of its own cameras only.
CREATE TABLE IF NOT EXISTS client_cameras (
    client_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    PRIMARY KEY (client_id, camera_id)
);
CREATE TABLE IF NOT EXISTS deliveries (
    verdict_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    acked_at REAL,                  -- NULL: still to be delivered to this client
    PRIMARY KEY (verdict_id, client_id)
);
-- Which batch each frame joined, so a frame re-sent after a restart never counts twice.
CREATE TABLE IF NOT EXISTS batched_frames (
    frame_key TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    added_at REAL NOT NULL
);
"""

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
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- batches -------------------------------------------------------------------------------
    def save_open(self, batch: OpenBatch) -> None:
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO batches (batch_id, camera_id, state, payload, updated_at) "
                "VALUES (?, ?, 'open', ?, ?) ON CONFLICT (batch_id) DO UPDATE SET "
                "payload = excluded.payload, updated_at = excluded.updated_at",
                (batch.batch_id, batch.camera_id, batch_to_json(batch), now),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO batched_frames (frame_key, batch_id, added_at) "
                "VALUES (?, ?, ?)",
                [
                    (_frame_key(batch.camera_id, f.frame_id), batch.batch_id, now)
                    for f in batch.frames
                ],
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
            (batch.batch_id, batch.camera_id, reason, batch_to_json(batch), time.time()),
        )

    def load_batches(self) -> tuple[list[OpenBatch], list[tuple[OpenBatch, str]]]:
        """(open batches, closed batches still waiting for a verdict with their close reason)."""
        opened, closed = [], []
        for state, reason, payload in self._db.execute(
            "SELECT state, close_reason, payload FROM batches ORDER BY updated_at"
        ):
            batch = batch_from_json(payload)
            if state == "open":
                opened.append(batch)
            else:
                closed.append((batch, reason))
        return opened, closed

    # -- verdicts ------------------------------------------------------------------------------
    def add_verdict(self, verdict: Verdict, *, finishes_batch: bool) -> bool:
        """Store a verdict (and drop its batch if this is the batch's final verdict) atomically.

        Returns False when a verdict with this id already exists (then nothing changes)."""
        with self._transaction():
            now = time.time()
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO verdicts (verdict_id, event_id, payload, created_at) "
                "VALUES (?, ?, ?, ?)",
                (verdict.verdict_id, verdict.event_id, verdict_to_json(verdict), now),
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
        return cursor.rowcount == 1

    def has_verdict(self, verdict_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM verdicts WHERE verdict_id = ?", (verdict_id,)
        ).fetchone()
        return row is not None

    def register_client(self, client_id: str) -> None:
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT INTO clients (client_id, first_seen, last_seen) VALUES (?, ?, ?) "
                "ON CONFLICT (client_id) DO UPDATE SET last_seen = excluded.last_seen",
                (client_id, now, now),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries (verdict_id, client_id, acked_at) "
                "SELECT verdict_id, ?, NULL FROM verdicts "
                "WHERE acked_at IS NULL AND created_at >= ? "
                "AND json_extract(payload, '$.camera_id') "
                "IN (SELECT camera_id FROM client_cameras WHERE client_id = ?)",
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
            {"client": client_id, "older_than": time.time() if older_than is None else older_than},
        ).fetchall()
        return [verdict_from_json(row[0]) for row in rows]

    def pending_count(self, connected: set[str]) -> int:
        row = self._db.execute(
            _PENDING_COUNT, (time.time() - VERDICT_RETENTION_S, json.dumps(sorted(connected)))
        ).fetchone()
        return int(row[0])

    def ack(self, client_id: str, verdict_ids: list[str]) -> int:
        """Record a client's acknowledgements; returns how many were new."""
        now = time.time()
        changed = 0
        with self._transaction():
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
        cutoff = time.time()
        with self._transaction():
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

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _frame_key(camera_id: str, frame_id: str) -> str:
    return f"{camera_id}\x1f{frame_id}"

