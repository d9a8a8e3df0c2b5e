"""The disk as attacker: the integration's database damaged before start, or deleted while Home
Assistant runs. Real HA harness, real SQLite files, the real sidecar process."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    DOMAIN,
    ISSUE_DATABASE_DAMAGED,
    ISSUE_DATABASE_RESTORED,
)
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.settings import database_path
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame

from ..helpers import image_bytes, wait_for, write_image


def _damage(path: Path) -> None:
    """Overwrite the middle of the file (its tables' pages) with garbage, header intact."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(1024)
        f.write(os.urandom(max(0, size - 2048)))


async def test_damaged_database_is_moved_aside_and_secmon_starts_clean(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, camera_root: Path
) -> None:
    """Garbage where the database should be: the file is moved aside (kept), the entry loads
    on an empty database, a repair issue says where the file went, frames flow."""
    path = database_path(hass, mock_config_entry.entry_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database" * 1000)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED

    moved = [p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.damaged-")]
    assert len(moved) == 1
    assert moved[0].read_bytes().startswith(b"this is not a database")
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_DATABASE_DAMAGED}_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["moved_to"] == str(moved[0])
    # Nothing could be read of it: the issue says how many frames were lost is not known.
    assert issue.translation_placeholders["pending"] == "an unknown number of"

    coordinator: SecmonCoordinator = mock_config_entry.runtime_data
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "a frame")


async def test_repair_issue_counts_the_frames_lost_with_a_damaged_database(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """A database with 5 frames waiting and one damaged index page (SQLite can still read the
    frames table): moved aside, and the repair issue says that 5 frames were lost."""
    path = database_path(hass, mock_config_entry.entry_id)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_damaged() -> None:
        database = Database(path)
        database.open()
        queue = FrameQueue(database, 100)
        for n in range(5):
            frame = QueuedFrame(
                frame_id=f"f{n}",
                camera_id="front_door",
                camera_name="Front Door",
                path=f"/nowhere/{n}.jpg",
                content_type="image/jpeg",
                captured_at=float(n),
                image=b"x" * 100,
            )
            queue.enqueue(frame, f"h{n}")
        database.close()
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
            (root,) = db.execute(
                "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name != 'frames'"
                " ORDER BY rootpage DESC LIMIT 1"
            ).fetchone()
        db.close()
        with path.open("r+b") as f:
            f.seek((root - 1) * page_size)
            f.write(b"\xa5" * page_size)

    await hass.async_add_executor_job(write_damaged)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_DATABASE_DAMAGED}_{mock_config_entry.entry_id}"
    )
    assert issue is not None and issue.translation_placeholders is not None
    assert issue.translation_placeholders["pending"] == "5"
    assert "integrity check failed" in issue.translation_placeholders["error"]
    coordinator: SecmonCoordinator = mock_config_entry.runtime_data
    assert coordinator.queue_depth == 0


def test_damaged_pages_are_detected_and_the_pending_frames_counted(tmp_path: Path) -> None:
    """A file with a valid header and damaged pages fails the integrity check at open; what
    could still be read of it is reported."""
    path = tmp_path / "secmon.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE frames (frame_id TEXT, image BLOB)")
    db.executemany(
        "INSERT INTO frames VALUES (?, ?)", [(str(n), os.urandom(3000)) for n in range(40)]
    )
    db.execute("CREATE INDEX frames_id ON frames (frame_id)")
    db.commit()
    db.close()
    _damage(path)

    database = Database(path)
    database.open()
    try:
        assert database.damaged is not None
        assert database.damaged.moved_to.exists()
        with database.connection() as conn:
            assert conn.execute("SELECT COUNT(*) FROM frames").fetchone() == (0,)
    finally:
        database.close()


async def test_database_deleted_while_running_is_written_back(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """Deleting the file under a running entry is noticed; the file is written back from the
    open connection, so the history survives a reload; a repair issue says so."""
    coordinator: SecmonCoordinator = init_integration.runtime_data
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(2))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "a frame")
    assert not await coordinator.async_check_database()

    path = database_path(hass, init_integration.entry_id)
    for side in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        side.unlink(missing_ok=True)
    assert await coordinator.async_check_database()
    assert path.exists()
    assert ir.async_get(hass).async_get_issue(
        DOMAIN, f"{ISSUE_DATABASE_RESTORED}_{init_integration.entry_id}"
    )

    write_image(camera_root / "Front Door" / "b.jpg", image_bytes(3))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 2, "after restore")
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    again: SecmonCoordinator = init_integration.runtime_data
    assert again.counters["frames_processed"] == 2
    assert again.cameras["front_door"].frame_id is not None
