"""The ingestor on awkward files in a camera folder (real hass, real files, real SQLite queue; no
sidecar, so what is taken stays pending): files reported twice, files it must not or cannot
read, and a clip with more frames than the queue holds."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_CLIP_MAX_FRAMES,
    CONF_CLIP_RATE,
    CONF_DEBOUNCE,
    CONF_QUEUE_BOUND,
    DOMAIN,
)
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.ingest.files import REASON_SPECIAL
from custom_components.secmon.storage.frame_queue import QueuedFrame

from .clips import write_test_clip
from .helpers import image_bytes, wait_for, write_image

QUEUE_BOUND = 5


@pytest.fixture
async def entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, unused_address: str
) -> MockConfigEntry:
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
        options={
            CONF_DEBOUNCE: 0.2,
            CONF_QUEUE_BOUND: QUEUE_BOUND,
            CONF_CLIP_RATE: 2.0,
            CONF_CLIP_MAX_FRAMES: 20,
        },
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


@pytest.fixture
def coordinator(entry: MockConfigEntry) -> SecmonCoordinator:
    result: SecmonCoordinator = entry.runtime_data
    return result


async def _take(hass: HomeAssistant, coordinator: SecmonCoordinator, *paths: Path) -> None:
    """Hand `paths` to the ingestor (as the watcher does) and wait until it handled them."""
    for path in paths:
        coordinator.ingestor.submit(path)
    await coordinator.ingestor.async_wait_idle()
    await hass.async_block_till_done()


async def _pending(hass: HomeAssistant, coordinator: SecmonCoordinator) -> int:
    return await hass.async_add_executor_job(coordinator.queue.pending_count)


async def wait_for_pending(hass: HomeAssistant, coordinator: SecmonCoordinator, n: int) -> None:
    await wait_for(hass, lambda: coordinator.queue.pending_count() == n, f"{n} frame(s) queued")


async def _queued(hass: HomeAssistant, coordinator: SecmonCoordinator) -> list[QueuedFrame]:
    return await hass.async_add_executor_job(coordinator.queue.next_pending, (), 100)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage())


async def test_an_unchanged_image_reported_twice_is_taken_once_and_not_a_duplicate(
    hass: HomeAssistant, coordinator: SecmonCoordinator, camera_root: Path
) -> None:
    """The watcher and the start-up catch-up can both report a file: the second report of the
    same size and mtime is no news, not a duplicate upload."""
    image = write_image(camera_root / "Front Door" / "a.jpg", image_bytes(1))
    await _take(hass, coordinator, image, image)
    assert await _pending(hass, coordinator) == 1
    assert coordinator.counters["duplicates"] == 0


async def test_a_refused_file_is_warned_about_and_counted_once(
    hass: HomeAssistant,
    coordinator: SecmonCoordinator,
    camera_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipe = camera_root / "Front Door" / "pipe.jpg"
    os.mkfifo(pipe)
    await _take(hass, coordinator, pipe, pipe, pipe)
    assert coordinator.counters[f"files_refused_{REASON_SPECIAL}"] == 1
    assert _warnings(caplog, f"Refusing {pipe}") == 1
    assert await _pending(hass, coordinator) == 0


async def test_an_undecodable_clip_reported_again_is_skipped_once(
    hass: HomeAssistant,
    coordinator: SecmonCoordinator,
    camera_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk = write_image(camera_root / "Front Door" / "junk.mp4", b"\x00\x00\x00\x18ftypmp42" * 200)
    await _take(hass, coordinator, junk, junk)
    assert coordinator.counters["frames_skipped"] == 1
    assert _warnings(caplog, f"Skipping {junk}") == 1


async def test_a_file_that_cannot_be_read_is_logged_and_the_next_one_taken(
    hass: HomeAssistant,
    coordinator: SecmonCoordinator,
    camera_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A link to itself named like an image: opening it fails (too many levels of links). The
    watcher may report it too: at least one warning, never a count."""
    loop = camera_root / "Front Door" / "loop.jpg"
    loop.symlink_to(loop)
    after = write_image(camera_root / "Front Door" / "after.jpg", image_bytes(2))
    await _take(hass, coordinator, loop, after)
    assert _warnings(caplog, f"Could not read {loop}") >= 1
    assert coordinator.counters["frames_skipped"] == 0
    assert not any(n.startswith("files_refused_") and c for n, c in coordinator.counters.items())
    assert await _pending(hass, coordinator) == 1


async def test_a_clip_with_more_frames_than_the_queue_holds_drops_the_oldest(
    hass: HomeAssistant,
    coordinator: SecmonCoordinator,
    camera_root: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """6 s at 2 frames/s: 12 frames into a queue of 5 (nothing sent: no sidecar)."""
    source = tmp_path / "long.mp4"
    write_test_clip(source, frames=60, fps=10, codec="mpeg4")
    clip = write_image(camera_root / "Front Door" / "long.mp4", source.read_bytes())
    await _take(hass, coordinator, clip)
    assert await _pending(hass, coordinator) == QUEUE_BOUND
    assert coordinator.counters["frames_dropped"] == 12 - QUEUE_BOUND
    assert _warnings(caplog, "The frame queue is full") >= 1


async def test_images_that_landed_while_home_assistant_was_down_are_taken_at_start(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path
) -> None:
    """After a restart, files newer than the newest one taken are caught up: one older than
    the write grace at once, one that may still be being written after the watcher's check.
    Files no newer than the newest one taken are history."""
    folder = camera_root / "Front Door"
    now = time.time()
    first = write_image(folder / "first.jpg", image_bytes(1), mtime=now - 600)
    coordinator: SecmonCoordinator = entry.runtime_data
    await _take(hass, coordinator, first)
    assert await _pending(hass, coordinator) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    write_image(folder / "older.jpg", image_bytes(2), mtime=now - 900)
    write_image(folder / "while_down.jpg", image_bytes(3), mtime=now - 120)
    write_image(folder / "just_now.jpg", image_bytes(4), mtime=time.time())
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for_pending(hass, coordinator, 3)
    assert sorted(Path(f.path).name for f in await _queued(hass, coordinator)) == [
        "first.jpg",
        "just_now.jpg",
        "while_down.jpg",
    ]
