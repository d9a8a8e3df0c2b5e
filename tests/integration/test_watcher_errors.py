"""The folder watcher when files and folders go away under it, and after it stopped (real
directories, real observer)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from homeassistant.core import HomeAssistant

from custom_components.secmon.ingest.watcher import FolderWatcher, file_signature, scan_images

from .helpers import image_bytes, wait_for, write_image


async def _started(hass: HomeAssistant, root: Path, images: list[Path]) -> FolderWatcher:
    watcher = FolderWatcher(
        hass,
        root,
        polling=False,
        debounce=0.2,
        on_camera=lambda *_args: None,
        on_image=images.append,
    )
    await watcher.async_start()
    return watcher


def test_a_scan_skips_an_image_that_is_gone_before_it_is_looked_at(tmp_path: Path) -> None:
    """A dangling link named like an image (its upload deleted while the folder is walked)."""
    cam = tmp_path / "Cam"
    write_image(cam / "kept.jpg", b"x", mtime=100)
    (cam / "gone.jpg").symlink_to(cam / "deleted.jpg")
    assert [p.name for _, p in scan_images(cam)] == ["kept.jpg"]
    assert file_signature(cam / "deleted.jpg") is None


def test_scanning_a_folder_that_vanished_finds_nothing(tmp_path: Path) -> None:
    assert scan_images(tmp_path / "Gone") == []


async def test_a_scanned_file_deleted_before_it_settles_is_not_reported(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A file a scan found is checked once it settled: one deleted in between is dropped, one
    still there is reported."""
    (tmp_path / "Cam").mkdir()
    reported: list[Path] = []
    watcher = await _started(hass, tmp_path, reported)
    try:
        gone = tmp_path / "Cam" / "gone.jpg"
        kept = write_image(tmp_path / "Cam" / "kept.jpg", image_bytes(1), mtime=time.time() - 60)
        watcher.async_check_later(gone)
        watcher.async_check_later(kept)
        await wait_for(hass, lambda: kept in reported, "the settled file reported")
        # The deleted one was checked at the first settle check, before the kept one's second.
        assert gone not in reported
    finally:
        await watcher.async_stop()


async def test_nothing_is_reported_after_the_watcher_stopped(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    (tmp_path / "Cam").mkdir()
    reported: list[Path] = []
    watcher = await _started(hass, tmp_path, reported)
    early = write_image(tmp_path / "Cam" / "early.jpg", image_bytes(1), mtime=time.time() - 60)
    await wait_for(hass, lambda: early in reported, "an image seen while watching")
    await watcher.async_stop()
    late = write_image(tmp_path / "Cam" / "late.jpg", image_bytes(2), mtime=time.time() - 60)
    watcher.async_check_later(late)
    os.utime(early)
    # The same waits that reported the first image, twice over.
    reference: list[Path] = []
    other = await _started(hass, tmp_path, reference)
    try:
        other.async_check_later(late)
        await wait_for(hass, lambda: late in reference, "a running watcher reports it")
    finally:
        await other.async_stop()
    assert reported == [early]
