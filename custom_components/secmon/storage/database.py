"""The entry's SQLite file in HA's config directory: its connection, and every table as numbered
migrations.

The file's `PRAGMA user_version` counts the migrations applied to it. Opening the file applies the
ones it lacks, in order, each in one transaction together with its version bump, so an interrupted
upgrade leaves the file at the last complete version. A file whose version is higher than this
code knows was written by a newer secmon and is refused rather than guessed at.

To change the schema, append a migration to MIGRATIONS (never edit one that has shipped: files in
the field already ran it) and extend tests/integration/test_database.py with a file written at the
previous version.

The stores (frame_queue.py, verdict_store.py) share one `Database`: its lock, connection and
transactions. Every method blocks: callers run them in HA's executor, never on the event loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..link.proto import secmon_pb2

Migration = Callable[[sqlite3.Connection], None]


class SchemaVersionError(Exception):
    """The database was written by a newer version of secmon."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        """`found` is the file's version, `known` the newest this code knows."""
        super().__init__(f"{path} has schema version {found}; this secmon knows up to {known}")
        self.path = path
        self.found = found
        self.known = known


def _frame_queue_tables(db: sqlite3.Connection) -> None:
    """Version 1: frames waiting for a result, dedupe hashes, results, each camera's last frame,
    cameras, counters, where analysed frames' files are, and meta (the first-open baseline).

    Files written before the schema had migrations already hold these tables (at version 1 or 2),
    hence IF NOT EXISTS."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS frames (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            frame_id TEXT NOT NULL UNIQUE,
            camera_id TEXT NOT NULL,
            camera_name TEXT NOT NULL,
            path TEXT NOT NULL,
            content_type TEXT NOT NULL,
            captured_at REAL NOT NULL,
            enqueued_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            image BLOB NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS frames_order ON frames (captured_at, seq)",
        """CREATE TABLE IF NOT EXISTS seen (
            content_hash TEXT PRIMARY KEY,
            frame_id TEXT NOT NULL,
            seen_at REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS results (
            frame_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            captured_at REAL NOT NULL,
            stored_at REAL NOT NULL,
            result BLOB NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS last_frame (
            camera_id TEXT PRIMARY KEY,
            frame_id TEXT NOT NULL,
            captured_at REAL NOT NULL,
            result BLOB NOT NULL,
            image BLOB NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS cameras (
            camera_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            last_seen REAL
        )""",
        """CREATE TABLE IF NOT EXISTS counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS frame_paths (
            frame_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            path TEXT NOT NULL,
            stored_at REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS frame_paths_age ON frame_paths (stored_at)",
    ):
        db.execute(statement)


def _verdict_tables(db: sqlite3.Connection) -> None:
    """Version 2: the verdict history and each camera's current verdict with its snapshot.

    Files written before the schema had migrations at version 2 already hold these tables, hence
    IF NOT EXISTS."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS verdicts (
            verdict_id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            fast_path INTEGER NOT NULL,
            level_rank INTEGER NOT NULL,
            announced INTEGER NOT NULL,
            received_at REAL NOT NULL,
            verdict BLOB NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS verdicts_event ON verdicts (event_id)",
        "CREATE INDEX IF NOT EXISTS verdicts_age ON verdicts (received_at)",
        """CREATE TABLE IF NOT EXISTS camera_risk (
            camera_id TEXT PRIMARY KEY,
            verdict_id TEXT NOT NULL,
            verdict BLOB NOT NULL,
            snapshot BLOB,
            snapshot_at REAL
        )""",
    ):
        db.execute(statement)


def _camera_missing_since(db: sqlite3.Connection) -> None:
    """Version 3: since when a camera's folder is gone (NULL while it is there), so its device
    can be removed after a grace period while its history stays."""
    db.execute("ALTER TABLE cameras ADD COLUMN missing_since REAL")


def _event_feedback(db: sqlite3.Connection) -> None:
    """Next version: the owner's feedback on a security event (false alarm or confirmed, with an
    optional note), one row per event; kept apart from the verdicts, which are pruned by age."""
    db.execute(
        """CREATE TABLE feedback (
            event_id TEXT PRIMARY KEY,
            verdict TEXT NOT NULL,
            note TEXT NOT NULL,
            given_at REAL NOT NULL
        )"""
    )


def _video_and_retention(db: sqlite3.Connection) -> None:
    """Next version: frames sampled from a video clip keep their offset in seconds into the clip
    (NULL for an image file), waiting and analysed alike, so an event's snapshot can be decoded
    from the clip later; each event's stored media (folder, bytes) for retention and the disk
    cap; uploaded files whose frames all have their results (the only ones retention may
    delete)."""
    for statement in (
        "ALTER TABLE frames ADD COLUMN clip_offset REAL",
        "ALTER TABLE frame_paths ADD COLUMN clip_offset REAL",
        """CREATE TABLE event_media (
            event_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            picture_bytes INTEGER NOT NULL DEFAULT 0,
            clip_bytes INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX event_media_age ON event_media (created_at)",
        """CREATE TABLE analysed_files (
            path TEXT PRIMARY KEY,
            analysed_at REAL NOT NULL
        )""",
        "CREATE INDEX analysed_files_age ON analysed_files (analysed_at)",
    ):
        db.execute(statement)


def _verdict_context(db: sqlite3.Connection) -> None:
    """Next version: each verdict's context as columns next to its message, so events can be
    found by zone: how unusual the batch was (`anomaly`, 0 usual .. 1 never seen at this hour),
    the days of history that figure stands on, and the owner's zones its detections were in (a
    JSON list of names, by priority). Filled from the stored messages, which already hold them."""
    for statement in (
        "ALTER TABLE verdicts ADD COLUMN anomaly REAL NOT NULL DEFAULT 0",
        "ALTER TABLE verdicts ADD COLUMN baseline_days REAL NOT NULL DEFAULT 0",
        "ALTER TABLE verdicts ADD COLUMN zones TEXT NOT NULL DEFAULT '[]'",
    ):
        db.execute(statement)
    rows = db.execute("SELECT verdict_id, verdict FROM verdicts").fetchall()
    for verdict_id, blob in rows:
        message = secmon_pb2.Verdict.FromString(bytes(blob))
        if not (message.anomaly or message.baseline_days or message.zones):
            continue
        db.execute(
            "UPDATE verdicts SET anomaly = ?, baseline_days = ?, zones = ? WHERE verdict_id = ?",
            (
                float(message.anomaly),
                float(message.baseline_days),
                json.dumps(list(message.zones)),
                verdict_id,
            ),
        )


MIGRATIONS: tuple[Migration, ...] = (
    _frame_queue_tables,
    _verdict_tables,
    _camera_missing_since,
    _event_feedback,
    _video_and_retention,
    _verdict_context,
)
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(db: sqlite3.Connection) -> int:
    """The file's schema version (`PRAGMA user_version`)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    db: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the file up to `len(migrations)`; returns the version it had. `db` must be in
    autocommit mode (isolation_level None): each step runs in its own transaction."""
    found = version_of(db)
    if found > len(migrations):
        raise SchemaVersionError(path, found, len(migrations))
    for version in range(found + 1, len(migrations) + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            migrations[version - 1](db)
            db.execute(f"PRAGMA user_version={version}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return found


@dataclass(frozen=True, slots=True)
class DamagedFile:
    """A database file that could not be used at start-up, moved aside (kept, not deleted)."""

    moved_to: Path
    error: str
    # Frames that were waiting for a result in it, if that much could still be read.
    pending_frames: int | None


def _salvage_count(path: Path) -> int | None:
    """Pending frames in a damaged file, if SQLite can still count them."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return int(db.execute("SELECT COUNT(*) FROM frames").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        db.close()


class _DamagedError(sqlite3.DatabaseError):
    """SQLite's integrity check found damage."""


_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def _is_damage(err: sqlite3.DatabaseError) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(err, _DamagedError) or (
        code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    )


def _check_integrity(db: sqlite3.Connection) -> None:
    """Raise _DamagedError unless SQLite's quick check passes (damaged pages, indexes)."""
    row = db.execute("PRAGMA quick_check(1)").fetchone()
    if row is None or row[0] != "ok":
        raise _DamagedError(f"integrity check failed: {row[0] if row else '?'}")


class Database:
    """One SQLite connection shared by the entry's stores, behind one lock."""

    def __init__(self, path: Path) -> None:
        """Prepare (does not open) the file at `path`."""
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        # The file's identity (device, inode) while open: notices a file deleted or replaced.
        self._identity: tuple[int, int] | None = None
        # Set by `open` when the file was damaged and moved aside.
        self.damaged: DamagedFile | None = None

    def open(self) -> int:
        """Open (creating if needed) and migrate the file; returns the version it had.

        A file SQLite cannot read (not a database, corrupt pages) is moved aside next to it
        (`<name>.damaged-<time>`, with its -wal and -shm) and a new, empty file is started;
        `damaged` then says where it went. A file from a newer secmon is refused
        (SchemaVersionError), never moved."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            found = self._open()
        except SchemaVersionError:
            raise
        except sqlite3.DatabaseError as err:
            # Only damage moves the file: a locked or read-only file is not lost.
            if not _is_damage(err) or not self.path.exists():
                raise
            pending = _salvage_count(self.path)
            moved_to = self._move_aside()
            self.damaged = DamagedFile(moved_to, str(err), pending)
            found = self._open()
        return found

    def _open(self) -> int:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            _check_integrity(db)
            found = migrate(db, self.path)
        except BaseException:
            db.close()
            raise
        self._db = db
        info = os.stat(self.path)
        self._identity = (info.st_dev, info.st_ino)
        return found

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.replace(side, target.with_name(target.name + suffix))
        return target

    def restore_if_gone(self) -> bool:
        """If the file was deleted (or replaced) while open, write the open connection's content
        back to the path (nothing is lost: SQLite still holds the deleted file) and continue on
        it. True if that happened."""
        with self._lock:
            db = self._db
            if db is None or self._identity is None:
                return False
            try:
                info = os.stat(self.path)
                if (info.st_dev, info.st_ino) == self._identity:
                    return False
            except FileNotFoundError:
                pass
            self.path.parent.mkdir(parents=True, exist_ok=True)
            restored = self.path.with_name(f"{self.path.name}.restoring")
            with contextlib.suppress(FileNotFoundError):
                restored.unlink()
            copy = sqlite3.connect(restored)
            try:
                db.backup(copy)
            finally:
                copy.close()
            db.close()
            self._db = None
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path.with_name(self.path.name + suffix))
            os.replace(restored, self.path)
            self._open()
            return True

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the secmon database is not open")
        return self._db

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The connection, for single statements (each commits on its own) and reads."""
        with self._lock:
            yield self._conn()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction (rolled back if the block raises)."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
