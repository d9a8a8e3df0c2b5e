"""The state file's schema: every table is created and changed here, by numbered migrations.

The file's `PRAGMA user_version` counts the migrations applied to it. Opening a file applies the
ones it lacks, in order, each in one transaction together with its version bump, so an interrupted
upgrade leaves the file at the last complete version. A file whose version is higher than this
code knows was written by a newer sidecar and is refused rather than guessed at.

To change the schema, append a migration to MIGRATIONS (never edit one that has shipped: files in
the field already ran it) and extend tests/sidecar/test_state_migrations.py with a file written at
the previous version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from ..domain import StartupError

Migration = Callable[[sqlite3.Connection], None]


class SchemaVersionError(StartupError):
    """The state file was written by a newer sidecar."""


def _batches_and_verdict_outbox(db: sqlite3.Connection) -> None:
    """Version 1: batches, the frame -> batch map, the verdict outbox and its per-client deliveries.

    Files written before the schema was versioned (user_version 0) already hold exactly these
    tables, hence IF NOT EXISTS."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS batches (
            batch_id TEXT PRIMARY KEY,
            camera_id TEXT NOT NULL,
            state TEXT NOT NULL,            -- 'open' or 'closed' (waiting for its verdict)
            close_reason TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS verdicts (
            verdict_id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL,
            acked_at REAL
        )""",
        "CREATE INDEX IF NOT EXISTS verdicts_pending ON verdicts (acked_at, created_at)",
        # Verdicts are delivered to every client (Hello.client_id) until that client acknowledges.
        """CREATE TABLE IF NOT EXISTS clients (
            client_id TEXT PRIMARY KEY,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL
        )""",
        # The cameras each client sends frames of: a client is owed its own cameras' verdicts.
        """CREATE TABLE IF NOT EXISTS client_cameras (
            client_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            PRIMARY KEY (client_id, camera_id)
        )""",
        """CREATE TABLE IF NOT EXISTS deliveries (
            verdict_id TEXT NOT NULL,
            client_id TEXT NOT NULL,
            acked_at REAL,                  -- NULL: still to be delivered to this client
            PRIMARY KEY (verdict_id, client_id)
        )""",
        # Which batch each frame joined, so a frame re-sent after a restart never counts twice.
        """CREATE TABLE IF NOT EXISTS batched_frames (
            frame_key TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL,
            added_at REAL NOT NULL
        )""",
    ):
        db.execute(statement)


def _verdict_camera_column(db: sqlite3.Connection) -> None:
    """Version 2: each verdict's camera as a column (filled from its payload), so finding the
    verdicts owed to a client's cameras reads no JSON."""
    db.execute("ALTER TABLE verdicts ADD COLUMN camera_id TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE verdicts SET camera_id = json_extract(payload, '$.camera_id')")
    db.execute("CREATE INDEX verdicts_camera ON verdicts (camera_id)")


def _batch_frames_table(db: sqlite3.Connection) -> None:
    """Version 3: a batch's frames as rows of their own, so a frame joining a batch is one insert
    whatever the batch's size; the batch row keeps only its header (ids, times, flags)."""
    db.execute(
        """CREATE TABLE batch_frames (
            batch_id TEXT NOT NULL,
            seq INTEGER NOT NULL,           -- the frame's position in its batch
            payload TEXT NOT NULL,
            PRIMARY KEY (batch_id, seq)
        ) WITHOUT ROWID"""
    )
    db.execute(
        "INSERT INTO batch_frames (batch_id, seq, payload) "
        "SELECT b.batch_id, CAST(f.key AS INTEGER), f.value "
        "FROM batches b, json_each(b.payload, '$.frames') f"
    )
    db.execute("UPDATE batches SET payload = json_remove(payload, '$.frames')")


def _identities(db: sqlite3.Connection) -> None:
    """Version 4: anonymous identities (re-identification) and the sightings that define them,
    each with its appearance embedding (float32 bytes), kept for a retention."""
    db.execute(
        """CREATE TABLE identities (
            identity_id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,             -- 'person' or 'vehicle'
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE sightings (
            sighting_key TEXT PRIMARY KEY,  -- batch id, frame id and box: idempotent re-runs
            identity_id INTEGER NOT NULL REFERENCES identities (identity_id),
            kind TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            camera_name TEXT NOT NULL,
            batch_id TEXT NOT NULL,
            seen_at REAL NOT NULL,
            embedding BLOB NOT NULL
        )"""
    )
    db.execute("CREATE INDEX sightings_kind_time ON sightings (kind, seen_at)")
    db.execute("CREATE INDEX sightings_identity ON sightings (identity_id, seen_at)")


def _context(db: sqlite3.Connection) -> None:
    """Version 5: context for prompts. What is normal (context/baseline.py): per camera, label and
    hour of the week a decayed count of batches, each camera's first recorded batch, and the
    batches counted (so a verdict produced again counts once). The owner's feedback per client and
    event (context/feedback.py)."""
    db.execute(
        """CREATE TABLE feedback (
            client_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            camera_id TEXT NOT NULL,
            labels TEXT NOT NULL,           -- JSON list
            started_at REAL NOT NULL,
            verdict TEXT NOT NULL,          -- 'false_alarm' or 'confirmed'
            note TEXT NOT NULL,
            given_at REAL NOT NULL,
            risk_score INTEGER NOT NULL,
            identities TEXT NOT NULL,       -- JSON list
            PRIMARY KEY (client_id, event_id)
        )"""
    )
    db.execute("CREATE INDEX feedback_recent ON feedback (client_id, given_at)")
    db.execute(
        """CREATE TABLE activity_baseline (
            camera_id TEXT NOT NULL,
            label TEXT NOT NULL,
            hour_of_week INTEGER NOT NULL,  -- 0 = Monday 00:00 in the home's time zone
            weight REAL NOT NULL,           -- decayed count at updated_at
            updated_at REAL NOT NULL,
            PRIMARY KEY (camera_id, label, hour_of_week)
        ) WITHOUT ROWID"""
    )
    db.execute(
        "CREATE TABLE activity_cameras (camera_id TEXT PRIMARY KEY, first_seen REAL NOT NULL)"
    )
    db.execute(
        "CREATE TABLE activity_batches (batch_id TEXT PRIMARY KEY, recorded_at REAL NOT NULL)"
    )


MIGRATIONS: tuple[Migration, ...] = (
    _batches_and_verdict_outbox,
    _verdict_camera_column,
    _batch_frames_table,
    _identities,
    _context,
)
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the file up to `len(migrations)`; returns the version it had. `db` must be in
    autocommit mode (isolation_level None): each step manages its own transaction."""
    found = version_of(db)
    if found > len(migrations):
        raise SchemaVersionError(
            f"the state file is at schema version {found}, but this sidecar knows versions up to "
            f"{len(migrations)}: it was written by a newer sidecar. Run that version, or move the "
            "file out of --data-dir to start with empty state"
        )
    for version, step in enumerate(migrations[found:], start=found + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return found
