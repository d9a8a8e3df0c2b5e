"""Retention on real files and a real SQLite file, with the clock passed in: old events leave
with their media, old event clips go, the disk cap removes the oldest media first (and says when
that was younger than its retention), analysed uploads are deleted only when asked and only when
analysed; through the entry: the media size sensor and the repair issue."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import CONF_MEDIA_CAP_GB, DOMAIN, ISSUE_MEDIA_CAP
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.repairs import issue_id
from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.event_media import (
    CLIP_NAME,
    SNAPSHOT_NAME,
    THUMBNAIL_NAME,
    EventMedia,
)
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame
from custom_components.secmon.storage.retention import (
    DAY,
    Retention,
    RetentionPolicy,
    RetentionReport,
)
from custom_components.secmon.storage.verdict_store import VerdictStore
from custom_components.secmon.verdicts.records import VerdictRecord

from .clips import write_test_clip
from .helpers import image_bytes, state_of, wait_for

NOW = 1_800_000_000.0


class World:
    """A database, media folder and camera root, with events made at chosen ages."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.database = Database(tmp_path / "entry.db")
        self.database.open()
        self.queue = FrameQueue(self.database, 100)
        self.verdicts = VerdictStore(self.database, self.queue, kept_days=365)
        self.media = EventMedia(tmp_path / "entry", self.queue)
        self.root = tmp_path / "cameras"
        (self.root / "Cam").mkdir(parents=True)
        self.retention = Retention(self.database, self.media, self.root, lambda _p: True)

    def event(self, event_id: str, age_days: float) -> None:
        """A stored verdict of that age whose event has its pictures."""
        frame = self.tmp_path / f"{event_id}.jpg"
        frame.write_bytes(image_bytes(len(event_id), size=(640, 480)))
        with self.database.connection() as db:
            db.execute(
                "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at) VALUES (?,?,?,?)",
                (f"frame-{event_id}", "cam", str(frame), NOW),
            )
        record = VerdictRecord.from_message(
            secmon_pb2.Verdict(
                verdict_id=f"{event_id}:final",
                event_id=event_id,
                camera_id="cam",
                snapshot_frame_id=f"frame-{event_id}",
            )
        )
        assert self.verdicts.add(record, None) is not None
        assert self.media.store_pictures(record)
        self.age(event_id, age_days)

    def age(self, event_id: str, age_days: float) -> None:
        at = NOW - age_days * DAY
        with self.database.connection() as db:
            db.execute("UPDATE verdicts SET received_at = ? WHERE event_id = ?", (at, event_id))
            db.execute("UPDATE event_media SET created_at = ? WHERE event_id = ?", (at, event_id))

    def event_ids(self) -> set[str]:
        with self.database.connection() as db:
            return {str(r[0]) for r in db.execute("SELECT event_id FROM verdicts")}

    def run(self, policy: RetentionPolicy, budget: int = 100) -> tuple[RetentionReport, int]:
        report = RetentionReport()
        steps = 1
        while not self.retention.step(policy, NOW, report, budget):
            steps += 1
        return report, steps


@pytest.fixture
def world(tmp_path: Path) -> World:
    made = World(tmp_path)
    yield made
    made.database.close()


def _policy(**overrides: float | None) -> RetentionPolicy:
    values: dict[str, float | None] = {
        "keep_events_days": 30,
        "keep_clips_days": 30,
        "cap_bytes": 10**12,
        "delete_uploads_days": None,
    }
    values.update(overrides)
    return RetentionPolicy(**values)  # type: ignore[arg-type]


def test_old_events_leave_with_their_media(world: World) -> None:
    world.event("old", 40)
    world.event("recent", 10)
    report, _ = world.run(_policy())
    assert report.events_removed == 1
    assert world.event_ids() == {"recent"}
    assert not world.media.folder("old").exists()
    assert (world.media.folder("recent") / THUMBNAIL_NAME).is_file()
    assert report.media_bytes == world.retention.media_bytes() > 0
    assert report.removed_early == []


def test_old_clips_go_and_the_pictures_stay(world: World, tmp_path: Path) -> None:
    clip = tmp_path / "made.mp4"
    write_test_clip(clip, frames=10, codec="mpeg4")
    for event_id, age in (("ten_days", 10), ("two_days", 2)):
        world.event(event_id, age)
        world.media.store_clip(event_id, "cam", clip.read_bytes())
        world.age(event_id, age)
    before = world.retention.media_bytes()
    report, _ = world.run(_policy(keep_clips_days=7))
    assert report.clips_removed == 1
    assert not (world.media.folder("ten_days") / CLIP_NAME).exists()
    assert (world.media.folder("ten_days") / SNAPSHOT_NAME).is_file()
    assert (world.media.folder("two_days") / CLIP_NAME).is_file()
    assert world.event_ids() == {"ten_days", "two_days"}
    assert report.media_bytes == before - clip.stat().st_size


def test_the_cap_removes_the_oldest_media_first(world: World) -> None:
    for event_id, age in (("a", 40), ("b", 20), ("c", 15), ("d", 10), ("e", 5)):
        world.event(event_id, age)
    with world.database.connection() as db:
        sizes = dict(db.execute("SELECT event_id, picture_bytes FROM event_media").fetchall())
    cap = sizes["d"] + sizes["e"]
    report, _ = world.run(_policy(cap_bytes=cap))
    # "a" is past its retention (removed by age, not early); "b" and "c" had to go for the cap.
    assert report.events_removed == 1
    assert report.removed_early == ["b", "c"]
    assert report.media_bytes == cap
    assert [e for e in "abcde" if world.media.folder(e).exists()] == ["d", "e"]
    # The events themselves stay in the history; only their media went.
    assert world.event_ids() == {"b", "c", "d", "e"}


def test_work_is_done_in_bounded_steps(world: World) -> None:
    for n in range(5):
        world.event(f"old{n}", 40 + n)
    report, steps = world.run(_policy(), budget=2)
    assert report.events_removed == 5
    assert steps >= 3
    assert world.event_ids() == set()


def _upload(world: World, name: str, *, mtime_age_days: float) -> Path:
    path = world.root / "Cam" / name
    path.write_bytes(image_bytes(len(name)))
    os.utime(path, (NOW - mtime_age_days * DAY,) * 2)
    return path


def _analyse(world: World, path: Path, frame_id: str, age_days: float, *, done: bool) -> None:
    frame = QueuedFrame(frame_id, "cam", "Cam", str(path), "image/jpeg", NOW, b"x")
    assert world.queue.enqueue(frame, frame_id).accepted
    if done:
        assert world.queue.complete(frame_id, b"result") is not None
    with world.database.connection() as db:
        db.execute(
            "UPDATE analysed_files SET analysed_at = ? WHERE path = ?",
            (NOW - age_days * DAY, str(path)),
        )


def test_only_analysed_old_uploads_are_deleted_and_only_when_asked(world: World) -> None:
    analysed_old = _upload(world, "analysed_old.jpg", mtime_age_days=10)
    _analyse(world, analysed_old, "f1", 10, done=True)
    never_analysed = _upload(world, "never.jpg", mtime_age_days=30)
    analysed_recently = _upload(world, "recent.jpg", mtime_age_days=2)
    _analyse(world, analysed_recently, "f2", 2, done=True)
    # A clip with one frame analysed long ago and one still waiting for its result.
    clip = _upload(world, "alarm.mp4", mtime_age_days=10)
    _analyse(world, clip, "f3", 10, done=True)
    _analyse(world, clip, "f4", 10, done=False)
    # Replaced after it was analysed: the new file is newer than the cutoff.
    replaced = _upload(world, "replaced.jpg", mtime_age_days=1)
    _analyse(world, replaced, "f5", 10, done=True)

    report, _ = world.run(_policy())
    assert report.uploads_removed == 0
    assert analysed_old.exists()

    report, _ = world.run(_policy(delete_uploads_days=7))
    assert report.uploads_removed == 1
    assert not analysed_old.exists()
    assert never_analysed.exists()
    assert analysed_recently.exists()
    assert clip.exists()
    assert replaced.exists()


async def test_the_entry_shows_media_size_and_raises_the_cap_issue(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """With room, the sensor shows what the event's pictures take; with a cap below that, the
    media of an event younger than its retention are removed and a repair issue says so; a run
    that removes nothing early clears it."""
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data

    def frame_file() -> None:
        path = tmp_path / "frame.jpg"
        path.write_bytes(image_bytes(3, size=(640, 480)))
        with coordinator.database.connection() as db:
            db.execute(
                "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at) VALUES (?,?,?,?)",
                ("frame-a", "front_door", str(path), time.time()),
            )

    await hass.async_add_executor_job(frame_file)
    verdict = secmon_pb2.Verdict(
        verdict_id="ev:final", event_id="ev", camera_id="front_door", snapshot_frame_id="frame-a"
    )
    assert await coordinator.async_on_verdict(verdict)
    report = await coordinator.async_run_retention()
    await hass.async_block_till_done()
    assert report.media_bytes > 0
    entity = "sensor.secmon_sidecar_event_media_storage"
    assert float(state_of(hass, entity) or 0) == pytest.approx(report.media_bytes / 1e6, abs=0.1)
    registry = ir.async_get(hass)
    issue = issue_id(ISSUE_MEDIA_CAP, mock_config_entry.entry_id)
    assert registry.async_get_issue(DOMAIN, issue) is None

    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, CONF_MEDIA_CAP_GB: 1e-6}
    )
    await hass.async_block_till_done()
    # The reloaded entry runs retention at start: the cap removed the event's media.
    coordinator = mock_config_entry.runtime_data
    await wait_for(
        hass, lambda: registry.async_get_issue(DOMAIN, issue) is not None, "the cap's issue"
    )
    assert not coordinator.media.folder("ev").exists()
    assert await hass.async_add_executor_job(coordinator.retention.media_bytes) == 0
    assert state_of(hass, entity) == "0.0"

    # A run that removes nothing early clears it.
    report = await coordinator.async_run_retention()
    assert report.removed_early == []
    assert registry.async_get_issue(DOMAIN, issue) is None
