"""The durable frame queue, in the entry's database (database.py holds its tables).

A frame is written here before it is sent and leaves only when its result is stored, so a HA
restart or a sidecar outage never loses one. The queue also remembers content hashes (no frame is
sent twice, also across restarts), the newest file seen per camera (catch-up scan at start), the
latest analysed frame per camera (camera entities come back with their last image), counters and
where each analysed frame's file is (event snapshots).

Every method here blocks: callers run them in HA's executor, never on the loop.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ..ingest.video import frame_at, frames_at
from .database import Database

RESULTS_KEPT = 1000
SEEN_KEPT_SECONDS = 30 * 24 * 3600
# Batches close within minutes; a verdict's snapshot frame is looked up here by its id.
FRAME_PATHS_KEPT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class QueuedFrame:
    """A frame waiting for its result."""

    frame_id: str
    camera_id: str
    camera_name: str
    path: str
    content_type: str
    captured_at: float
    image: bytes
    attempts: int = 0
    # Seconds into the clip at `path` for a frame sampled from a video clip; None for an image.
    clip_offset: float | None = None


@dataclass(frozen=True, slots=True)
class EnqueueOutcome:
    """What `enqueue` did with a frame."""

    accepted: bool
    duplicate_of: str | None = None
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """The latest analysed frame of a camera, as restored at start."""

    camera_id: str
    frame_id: str
    captured_at: float
    result: bytes
    image: bytes


class FrameQueue:
    """Frames waiting for the sidecar, plus the integration's small persistent state."""

    def __init__(self, database: Database, max_frames: int) -> None:
        """Use `database` (opened by its owner)."""
        self.database = database
        self.max_frames = max_frames

    def prune(self) -> None:
        """Record the first-open baseline and drop old bookkeeping (once, after opening)."""
        now = time.time()
        with self.database.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('baseline', ?)", (repr(now),)
            )
            db.execute("DELETE FROM seen WHERE seen_at < ?", (now - SEEN_KEPT_SECONDS,))
            db.execute(
                "DELETE FROM frame_paths WHERE stored_at < ?", (now - FRAME_PATHS_KEPT_SECONDS,)
            )

    # -- frames ---------------------------------------------------------------------------------

    def enqueue(
        self, frame: QueuedFrame, content_hash: str, in_flight: Collection[str] = ()
    ) -> EnqueueOutcome:
        """Store a frame unless its content was seen before; drop the oldest beyond the bound,
        never one of `in_flight` (sent, its result on the way: dropping those under sustained
        overload would discard every result and analyse nothing)."""
        with self.database.transaction() as db:
            row = db.execute(
                "SELECT frame_id FROM seen WHERE content_hash = ?", (content_hash,)
            ).fetchone()
            if row is not None:
                return EnqueueOutcome(accepted=False, duplicate_of=str(row[0]))
            db.execute(
                "INSERT INTO seen (content_hash, frame_id, seen_at) VALUES (?, ?, ?)",
                (content_hash, frame.frame_id, time.time()),
            )
            db.execute(
                "INSERT INTO frames (frame_id, camera_id, camera_name, path, content_type,"
                " captured_at, enqueued_at, attempts, image, clip_offset)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    frame.frame_id,
                    frame.camera_id,
                    frame.camera_name,
                    frame.path,
                    frame.content_type,
                    frame.captured_at,
                    time.time(),
                    frame.image,
                    frame.clip_offset,
                ),
            )
            dropped: tuple[str, ...] = ()
            (count,) = db.execute("SELECT COUNT(*) FROM frames").fetchone()
            if count > self.max_frames:
                excess = count - self.max_frames
                rows = db.execute(
                    "SELECT frame_id FROM frames ORDER BY captured_at, seq LIMIT ?",
                    (excess + len(in_flight),),
                ).fetchall()
                dropped = tuple(str(r[0]) for r in rows if r[0] not in in_flight)[:excess]
                db.executemany("DELETE FROM frames WHERE frame_id = ?", [(d,) for d in dropped])
                self._bump(db, "frames_dropped", len(dropped))
            return EnqueueOutcome(accepted=True, dropped=dropped)

    def next_pending(self, exclude: Collection[str], limit: int) -> list[QueuedFrame]:
        """Up to `limit` pending frames in capture order, skipping the ids in `exclude`."""
        if limit <= 0:
            return []
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT frame_id, camera_id, camera_name, path, content_type, captured_at, image,"
                " attempts, clip_offset FROM frames ORDER BY captured_at, seq LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
        frames = [
            QueuedFrame(
                frame_id=r[0],
                camera_id=r[1],
                camera_name=r[2],
                path=r[3],
                content_type=r[4],
                captured_at=r[5],
                image=r[6],
                attempts=r[7],
                clip_offset=r[8],
            )
            for r in rows
            if r[0] not in exclude
        ]
        return frames[:limit]

    def complete(self, frame_id: str, result: bytes, *, failed: bool = False) -> QueuedFrame | None:
        """Store a frame's result and take it off the queue.

        Returns the frame (with its image) if it was pending, None if it was not (a result that
        arrives twice, or for a frame already dropped) so that callers apply each result once.
        """
        with self.database.transaction() as db:
            row = db.execute(
                "SELECT frame_id, camera_id, camera_name, path, content_type, captured_at,"
                " image, attempts, clip_offset FROM frames WHERE frame_id = ?",
                (frame_id,),
            ).fetchone()
            if row is None:
                return None
            frame = QueuedFrame(*row)
            now = time.time()
            db.execute(
                "INSERT OR REPLACE INTO results (frame_id, camera_id, captured_at, stored_at,"
                " result) VALUES (?, ?, ?, ?, ?)",
                (frame_id, frame.camera_id, frame.captured_at, now, result),
            )
            db.execute("DELETE FROM frames WHERE frame_id = ?", (frame_id,))
            db.execute(
                "INSERT OR REPLACE INTO frame_paths (frame_id, camera_id, path, stored_at,"
                " clip_offset) VALUES (?, ?, ?, ?, ?)",
                (frame_id, frame.camera_id, frame.path, now, frame.clip_offset),
            )
            db.execute(
                "INSERT OR REPLACE INTO analysed_files (path, analysed_at) VALUES (?, ?)",
                (frame.path, now),
            )
            if failed:
                self._bump(db, "frames_failed", 1)
            else:
                self._bump(db, "frames_processed", 1)
                db.execute(
                    "INSERT INTO last_frame (camera_id, frame_id, captured_at, result, image)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (camera_id) DO UPDATE SET"
                    " frame_id = excluded.frame_id, captured_at = excluded.captured_at,"
                    " result = excluded.result, image = excluded.image"
                    " WHERE excluded.captured_at >= last_frame.captured_at",
                    (frame.camera_id, frame_id, frame.captured_at, result, frame.image),
                )
            db.execute(
                "DELETE FROM results WHERE frame_id IN (SELECT frame_id FROM results"
                " ORDER BY stored_at DESC LIMIT -1 OFFSET ?)",
                (RESULTS_KEPT,),
            )
            return frame

    def record_attempt(self, frame_id: str) -> int:
        """Count a failed attempt at a frame (retryable sidecar error); returns the total."""
        with self.database.connection() as db:
            db.execute("UPDATE frames SET attempts = attempts + 1 WHERE frame_id = ?", (frame_id,))
            row = db.execute(
                "SELECT attempts FROM frames WHERE frame_id = ?", (frame_id,)
            ).fetchone()
        return int(row[0]) if row else 0

    def pending_count(self) -> int:
        """Frames waiting for a result."""
        with self.database.connection() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM frames").fetchone()
        return int(count)

    def result(self, frame_id: str) -> bytes | None:
        """The stored result of a frame, if kept."""
        with self.database.connection() as db:
            row = db.execute(
                "SELECT result FROM results WHERE frame_id = ?", (frame_id,)
            ).fetchone()
        return bytes(row[0]) if row else None

    def frame_image(self, frame_id: str) -> bytes | None:
        """A frame's image: kept in the database if it is pending or a camera's latest, else
        read from its file (None if that is gone)."""
        with self.database.connection() as db:
            for query in (
                "SELECT image FROM last_frame WHERE frame_id = ?",
                "SELECT image FROM frames WHERE frame_id = ?",
            ):
                row = db.execute(query, (frame_id,)).fetchone()
                if row is not None:
                    return bytes(row[0])
            row = db.execute(
                "SELECT path, clip_offset FROM frame_paths WHERE frame_id = ?", (frame_id,)
            ).fetchone()
        if row is None:
            return None
        if row[1] is not None:
            return frame_at(Path(row[0]), float(row[1]))
        try:
            return Path(row[0]).read_bytes()
        except OSError:
            return None

    def clips_of(self, frame_ids: Collection[str]) -> list[str]:
        """The clips (paths, first appearance order) that frames among `frame_ids` were sampled
        from; frames from image files, or no longer known, add nothing."""
        clips: dict[str, None] = {}
        with self.database.connection() as db:
            for frame_id in frame_ids:
                row = db.execute(
                    "SELECT path FROM frame_paths WHERE frame_id = ? AND clip_offset IS NOT NULL"
                    " UNION ALL SELECT path FROM frames WHERE frame_id = ?"
                    " AND clip_offset IS NOT NULL LIMIT 1",
                    (frame_id, frame_id),
                ).fetchone()
                if row is not None:
                    clips[str(row[0])] = None
        return list(clips)

    def single_clip_offsets(self, frame_ids: Collection[str]) -> tuple[Path, list[float]] | None:
        """The clip and offsets of the known frames among `frame_ids` when every one of them
        was sampled from the same clip; None when one came from an image file or another clip,
        or none is known."""
        path: str | None = None
        offsets: list[float] = []
        with self.database.connection() as db:
            for frame_id in frame_ids:
                row = db.execute(
                    "SELECT path, clip_offset FROM frame_paths WHERE frame_id = ?"
                    " UNION ALL SELECT path, clip_offset FROM frames WHERE frame_id = ? LIMIT 1",
                    (frame_id, frame_id),
                ).fetchone()
                if row is None:
                    continue
                if row[1] is None or (path is not None and str(row[0]) != path):
                    return None
                path = str(row[0])
                offsets.append(float(row[1]))
        return (Path(path), offsets) if path is not None else None

    def frame_images(self, frame_ids: list[str]) -> dict[str, bytes]:
        """`frame_image` of several frames (those that can be had), decoding each video clip
        they come from once."""
        images: dict[str, bytes] = {}
        from_clips: dict[str, list[tuple[str, float]]] = {}
        with self.database.connection() as db:
            for frame_id in frame_ids:
                row = db.execute(
                    "SELECT path, clip_offset FROM frame_paths WHERE frame_id = ?", (frame_id,)
                ).fetchone()
                if row is not None and row[1] is not None:
                    held = db.execute(
                        "SELECT image FROM last_frame WHERE frame_id = ? UNION ALL"
                        " SELECT image FROM frames WHERE frame_id = ? LIMIT 1",
                        (frame_id, frame_id),
                    ).fetchone()
                    if held is None:
                        from_clips.setdefault(str(row[0]), []).append((frame_id, float(row[1])))
        decoded_later = {f for wanted in from_clips.values() for f, _ in wanted}
        for frame_id in frame_ids:
            if frame_id in decoded_later:
                continue
            if (image := self.frame_image(frame_id)) is not None:
                images[frame_id] = image
        for path, wanted in from_clips.items():
            decoded = frames_at(Path(path), [offset for _, offset in wanted])
            for frame_id, offset in wanted:
                if offset in decoded:
                    images[frame_id] = decoded[offset]
        return images

    def last_frames(self) -> list[StoredFrame]:
        """The latest analysed frame of every camera."""
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT camera_id, frame_id, captured_at, result, image FROM last_frame"
            ).fetchall()
        return [StoredFrame(r[0], r[1], r[2], bytes(r[3]), bytes(r[4])) for r in rows]

    # -- cameras, counters ----------------------------------------------------------------------

    def baseline(self) -> float:
        """When this queue was first opened: files older than that are history, not news."""
        with self.database.connection() as db:
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'baseline'").fetchone()
        return float(value)

    def cameras(self) -> dict[str, tuple[str, float | None]]:
        """Known cameras: id -> (name, newest file mtime seen)."""
        with self.database.connection() as db:
            rows = db.execute("SELECT camera_id, name, last_seen FROM cameras").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def mark_seen(self, camera_id: str, name: str, mtime: float | None) -> None:
        """Remember a camera and the newest file mtime taken from it."""
        with self.database.connection() as db:
            db.execute(
                "INSERT INTO cameras (camera_id, name, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (camera_id) DO UPDATE SET name = excluded.name,"
                " last_seen = CASE WHEN excluded.last_seen IS NULL THEN cameras.last_seen"
                " WHEN cameras.last_seen IS NULL THEN excluded.last_seen"
                " ELSE MAX(cameras.last_seen, excluded.last_seen) END",
                (camera_id, name, mtime),
            )

    def set_missing(self, camera_id: str, name: str, since: float | None) -> None:
        """Note since when a camera's folder is gone (None: it is there)."""
        with self.database.connection() as db:
            db.execute(
                "INSERT INTO cameras (camera_id, name, last_seen, missing_since)"
                " VALUES (?, ?, NULL, ?)"
                " ON CONFLICT (camera_id) DO UPDATE SET missing_since = excluded.missing_since",
                (camera_id, name, since),
            )

    def missing_cameras(self) -> dict[str, float]:
        """Cameras whose folder is gone: id -> since when (epoch seconds)."""
        with self.database.connection() as db:
            rows = db.execute(
                "SELECT camera_id, missing_since FROM cameras WHERE missing_since IS NOT NULL"
            ).fetchall()
        return {str(r[0]): float(r[1]) for r in rows}

    def known_paths(self, paths: list[str]) -> set[str]:
        """Those of `paths` already taken: waiting in the queue or with a stored result."""
        known: set[str] = set()
        with self.database.connection() as db:
            for path in paths:
                if db.execute(
                    "SELECT 1 FROM frames WHERE path = ? UNION ALL"
                    " SELECT 1 FROM frame_paths WHERE path = ? LIMIT 1",
                    (path, path),
                ).fetchone():
                    known.add(path)
        return known

    def bump(self, name: str, by: int = 1) -> None:
        """Add to a persistent counter."""
        with self.database.connection() as db:
            self._bump(db, name, by)

    def counters(self) -> dict[str, int]:
        """Every persistent counter."""
        with self.database.connection() as db:
            rows = db.execute("SELECT name, value FROM counters").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    @staticmethod
    def count_in(db: sqlite3.Connection, name: str, by: int = 1) -> None:
        """Add to a persistent counter inside the caller's transaction."""
        FrameQueue._bump(db, name, by)

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )
