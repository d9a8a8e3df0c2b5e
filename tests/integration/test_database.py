"""The entry's database: migrations from files written by earlier versions; newer ones refused."""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.settings import database_path
from custom_components.secmon.storage.database import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Database,
    SchemaVersionError,
    migrate,
    version_of,
)
from custom_components.secmon.storage.event_search import get_event, list_events, set_feedback
from custom_components.secmon.storage.frame_queue import FrameQueue
from custom_components.secmon.storage.verdict_store import VerdictStore

from .fixtures import write_queue_v2_db as v2
from .helpers import state_of, wait_for

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = {
    "frames",
    "seen",
    "results",
    "last_frame",
    "cameras",
    "counters",
    "meta",
    "frame_paths",
    "verdicts",
    "camera_risk",
    "feedback",
    "event_media",
    "analysed_files",
}


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows} - {"sqlite_sequence"}


def _copy_v2(to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / "queue_v2.db", to)
    return to


def test_a_new_file_gets_every_table_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    database = Database(path)
    assert database.open() == 0
    database.close()
    assert _tables(path) == TABLES
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert version_of(db) == SCHEMA_VERSION == len(MIGRATIONS)


def test_a_file_from_before_migrations_keeps_its_frames_and_verdicts(tmp_path: Path) -> None:
    """The fixture was written by the integration's code before the schema had migrations."""
    path = _copy_v2(tmp_path / "old.db")
    database = Database(path)
    assert database.open() == 2
    try:
        queue = FrameQueue(database, max_frames=1000)
        queue.prune()
        verdicts = VerdictStore(database, queue)

        pending = queue.next_pending(set(), 10)
        assert [f.frame_id for f in pending] == [v2.QUEUED_FRAME]
        assert pending[0].camera_name == v2.CAMERA_NAME
        assert pending[0].image.startswith(b"\xff\xd8")
        assert queue.result(v2.ANALYSED_FRAME) is not None
        assert [f.frame_id for f in queue.last_frames()] == [v2.ANALYSED_FRAME]
        assert queue.counters() == {"frames_processed": 1, "frames_skipped": 2}
        assert queue.cameras()[v2.CAMERA_ID][0] == v2.CAMERA_NAME
        assert queue.missing_cameras() == {}

        history = verdicts.history(10)
        assert [h.record.verdict_id for h in history] == [v2.VERDICT_ID]
        assert history[0].announced
        (risk,) = verdicts.camera_risks()
        assert (risk.camera_id, risk.record.risk_score) == (v2.CAMERA_ID, 72)
        assert risk.snapshot is not None
    finally:
        database.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert version_of(db) == SCHEMA_VERSION


def test_a_version_3_file_gains_event_feedback_and_keeps_its_verdicts(tmp_path: Path) -> None:
    """A file at version 3 (the fixture brought up to it with the steps that version had)."""
    path = _copy_v2(tmp_path / "v3.db")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        migrate(db, path, MIGRATIONS[:3])
        assert version_of(db) == 3
    assert "feedback" not in _tables(path)
    database = Database(path)
    assert database.open() == 3
    try:
        assert set_feedback(database, v2.EVENT_ID, "false_alarm", "the cat")
        event = get_event(database, v2.EVENT_ID)
        assert event is not None
        assert [v.record.verdict_id for v in event.verdicts] == [v2.VERDICT_ID]
        assert event.as_dict()["feedback"]["verdict"] == "false_alarm"
        assert not set_feedback(database, "no-such-event", "confirmed", "")
    finally:
        database.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert version_of(db) == SCHEMA_VERSION


def test_a_version_4_file_gains_the_video_tables_and_keeps_its_frames(tmp_path: Path) -> None:
    """A file at version 4: its queued frame is an image frame (no clip offset), is sent and
    completed as before, and a clip frame can be queued next to it."""
    path = _copy_v2(tmp_path / "v4.db")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        migrate(db, path, MIGRATIONS[:4])
        assert version_of(db) == 4
        columns = {r[1] for r in db.execute("PRAGMA table_info(frames)").fetchall()}
        assert "clip_offset" not in columns
    database = Database(path)
    assert database.open() == 4
    try:
        queue = FrameQueue(database, max_frames=1000)
        queue.prune()
        (pending,) = queue.next_pending(set(), 10)
        assert (pending.frame_id, pending.clip_offset) == (v2.QUEUED_FRAME, None)
        clip_frame = replace(pending, frame_id="c" * 32, path="/cams/x/alarm.mp4", clip_offset=1.5)
        assert queue.enqueue(clip_frame, "clip-hash").accepted
        assert {f.frame_id: f.clip_offset for f in queue.next_pending(set(), 10)} == {
            v2.QUEUED_FRAME: None,
            "c" * 32: 1.5,
        }
        assert queue.complete(v2.QUEUED_FRAME, b"result") is not None
        with database.connection() as db:
            analysed = db.execute("SELECT path FROM analysed_files").fetchall()
        assert analysed == [(pending.path,)]
        assert queue.clips_of([v2.QUEUED_FRAME, "c" * 32]) == ["/cams/x/alarm.mp4"]
        assert queue.known_paths([pending.path]) == {pending.path}
    finally:
        database.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert version_of(db) == SCHEMA_VERSION


def test_a_version_5_file_gains_verdict_context_columns_filled_from_its_verdicts(
    tmp_path: Path,
) -> None:
    """A file at version 5 whose verdicts already carry the sidecar's context in their stored
    messages: the upgrade fills the anomaly, baseline and zone columns from them, and the events
    can then be found by zone."""
    path = _copy_v2(tmp_path / "v5.db")
    zoned = secmon_pb2.Verdict(
        verdict_id="zoned:final",
        event_id="zoned",
        camera_id=v2.CAMERA_ID,
        risk_score=40,
        anomaly=0.837,
        baseline_days=12.5,
        zones=["Porch", "Driveway"],
    )
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        migrate(db, path, MIGRATIONS[:5])
        assert version_of(db) == 5
        columns = {r[1] for r in db.execute("PRAGMA table_info(verdicts)").fetchall()}
        assert not {"anomaly", "baseline_days", "zones"} & columns
        # What version 5's store wrote: the message, no context columns.
        db.execute(
            "INSERT INTO verdicts (verdict_id, event_id, camera_id, fast_path, level_rank,"
            " announced, received_at, verdict) VALUES (?, ?, ?, 0, 1, 1, ?, ?)",
            (
                zoned.verdict_id,
                zoned.event_id,
                zoned.camera_id,
                time.time() + 60,
                zoned.SerializeToString(),
            ),
        )
    database = Database(path)
    assert database.open() == 5
    try:
        with database.connection() as db:
            rows = dict(
                (r[0], r[1:])
                for r in db.execute(
                    "SELECT verdict_id, anomaly, baseline_days, zones FROM verdicts"
                ).fetchall()
            )
        assert rows == {
            v2.VERDICT_ID: (0.0, 0.0, "[]"),
            "zoned:final": (pytest.approx(0.837), 12.5, '["Porch", "Driveway"]'),
        }
        assert [e.event_id for e in list_events(database, zone="driveway")] == ["zoned"]
        assert list_events(database, zone="Yard") == []
        assert [e.event_id for e in list_events(database)] == ["zoned", v2.EVENT_ID]
        event = get_event(database, "zoned")
        assert event is not None
        assert (event.as_dict()["anomaly"], event.as_dict()["zones"]) == (
            0.84,
            ["Porch", "Driveway"],
        )
    finally:
        database.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        assert version_of(db) == SCHEMA_VERSION


def test_a_file_from_a_newer_secmon_is_refused(tmp_path: Path) -> None:
    path = _copy_v2(tmp_path / "newer.db")
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError):
        Database(path).open()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        frames = {r[0] for r in db.execute("SELECT frame_id FROM frames")}
    assert v2.QUEUED_FRAME in frames


def test_a_failing_step_leaves_the_file_at_the_last_complete_version(tmp_path: Path) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise sqlite3.OperationalError("disk full")

    path = tmp_path / "broken.db"
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, path, (*MIGRATIONS, broken))
    assert version_of(db) == SCHEMA_VERSION
    assert "half_done" not in {
        r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    db.close()


async def test_setup_upgrades_the_file_and_sends_its_queued_frame(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """An entry whose database was written before migrations: the queued frame reaches the
    sidecar, the stored verdict is the camera's current one again."""
    entry = mock_config_entry
    _copy_v2(database_path(hass, entry.entry_id))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 2, "queued frame")
    await wait_for(hass, lambda: coordinator.queue_depth == 0, "queue drained")
    assert state_of(hass, "sensor.front_door_risk_score") == "72"
    assert state_of(hass, "sensor.front_door_risk_level") == "high"
    history = await hass.async_add_executor_job(coordinator.verdicts.history, 10)
    assert v2.VERDICT_ID in {h.record.verdict_id for h in history}


async def test_setup_refuses_a_database_from_a_newer_secmon(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    path = _copy_v2(database_path(hass, mock_config_entry.entry_id))
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
