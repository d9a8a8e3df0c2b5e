"""Anonymous identities: appearance embeddings matched by cosine similarity across cameras and
time. A crop close enough to an earlier sighting takes that sighting's identity ("person 7");
otherwise it starts a new one. Sightings are kept for a retention, then pruned.

Runs in the enrichment worker thread with its own connection to the state file (WAL: it never
blocks the event path's writes for long).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..domain import IdentityMatch
from ..storage.database import StateDatabase

DEFAULT_THRESHOLD = 0.9
DEFAULT_RETENTION_S = 7 * 24 * 3600
_CANDIDATES = 5000
_DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class IdentityResult:
    identity_id: int
    name: str
    visits_24h: int
    matches: tuple[IdentityMatch, ...]


class IdentityStore:
    def __init__(
        self,
        path: Path,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        retention_s: float = DEFAULT_RETENTION_S,
        max_matches: int = 3,
    ) -> None:
        self.database = StateDatabase(path)
        self._db = self.database.connection
        self._db.execute("PRAGMA busy_timeout = 30000")
        self.threshold = threshold
        self.retention_s = retention_s
        self.max_matches = max_matches

    def close(self) -> None:
        self.database.close()

    def prune(self) -> None:
        cutoff = self.database.now() - self.retention_s
        with self.database.transaction() as db:
            db.execute("DELETE FROM sightings WHERE seen_at < ?", (cutoff,))
            db.execute(
                "DELETE FROM identities WHERE identity_id NOT IN "
                "(SELECT DISTINCT identity_id FROM sightings)"
            )

    def observe(
        self,
        *,
        kind: str,
        embedding: np.ndarray,
        key: str,
        camera_id: str,
        camera_name: str,
        batch_id: str,
        seen_at: datetime,
    ) -> IdentityResult:
        """Match one crop's embedding, record the sighting, and say who it is and where else it
        was seen (other batches only)."""
        vector = np.asarray(embedding, dtype=np.float32)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        at = seen_at.timestamp()
        with self.database.transaction() as db:
            known = db.execute(
                "SELECT identity_id FROM sightings WHERE sighting_key = ?", (key,)
            ).fetchone()
            if known is not None:
                identity = int(known[0])
            else:
                identity = self._best_match(db, kind, vector, at) or self._new_identity(
                    db, kind, at
                )
                db.execute(
                    "INSERT INTO sightings (sighting_key, identity_id, kind, camera_id, "
                    "camera_name, batch_id, seen_at, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, identity, kind, camera_id, camera_name, batch_id, at, vector.tobytes()),
                )
                db.execute(
                    "UPDATE identities SET last_seen = MAX(last_seen, ?) WHERE identity_id = ?",
                    (at, identity),
                )
            visits = int(
                db.execute(
                    "SELECT COUNT(DISTINCT batch_id) FROM sightings WHERE identity_id = ? "
                    "AND seen_at > ? AND seen_at <= ?",
                    (identity, at - _DAY_S, at),
                ).fetchone()[0]
            )
            rows = db.execute(
                "SELECT camera_id, camera_name, MAX(seen_at), embedding FROM sightings "
                "WHERE identity_id = ? AND batch_id != ? AND seen_at <= ? "
                "GROUP BY batch_id ORDER BY MAX(seen_at) DESC LIMIT ?",
                (identity, batch_id, at, self.max_matches),
            ).fetchall()
        matches = tuple(
            IdentityMatch(
                camera_id=str(cam),
                camera_name=str(name),
                seen_at=datetime.fromtimestamp(float(when), UTC),
                similarity=round(float(np.frombuffer(blob, dtype=np.float32) @ vector), 3),
            )
            for cam, name, when, blob in rows
        )
        return IdentityResult(identity, f"{kind} {identity}", visits, matches)

    def _best_match(
        self, db: sqlite3.Connection, kind: str, vector: np.ndarray, at: float
    ) -> int | None:
        rows = db.execute(
            "SELECT identity_id, embedding FROM sightings WHERE kind = ? AND seen_at >= ? "
            "ORDER BY seen_at DESC LIMIT ?",
            (kind, at - self.retention_s, _CANDIDATES),
        ).fetchall()
        usable = [(i, b) for i, b in rows if len(b) == vector.nbytes]
        if not usable:
            return None
        matrix = np.stack([np.frombuffer(b, dtype=np.float32) for _i, b in usable])
        scores = matrix @ vector
        best = int(scores.argmax())
        return int(usable[best][0]) if float(scores[best]) >= self.threshold else None

    @staticmethod
    def _new_identity(db: sqlite3.Connection, kind: str, at: float) -> int:
        cursor = db.execute(
            "INSERT INTO identities (kind, first_seen, last_seen) VALUES (?, ?, ?)", (kind, at, at)
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)
