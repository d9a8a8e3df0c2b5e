"""The uploader as attacker: whatever can write into the camera folders (an FTP account, a
compromised camera). Real HA harness, real files, the real sidecar process."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Generator
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import DOMAIN, MAX_FRAME_BYTES
from custom_components.secmon.coordinator import SecmonCoordinator
from custom_components.secmon.ingest.imaging import (
    Box,
    TooManyPixelsError,
    check_image,
    render_detections,
)
from custom_components.secmon.ingest.video import sample_clip

from ..clips import write_test_clip
from ..helpers import image_bytes, state_of, wait_for, write_image
from .images import jpeg_with_orientation, png_header_only


@pytest.fixture
def outside() -> Generator[Path]:
    """A folder outside allowlist_external_dirs with a valid image in it."""
    path = Path(tempfile.mkdtemp(prefix="secmon-outside-"))
    write_image(path / "secret.jpg", image_bytes(90))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def coordinator_of(entry: MockConfigEntry) -> SecmonCoordinator:
    coordinator: SecmonCoordinator = entry.runtime_data
    return coordinator


async def test_fifo_and_device_link_do_not_block_ingest(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """A FIFO named .jpg and a .jpg symlink to /dev/zero are refused (counted); the image after
    them is analysed."""
    coordinator = coordinator_of(init_integration)
    folder = camera_root / "Front Door"
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    await asyncio.sleep(0.5)
    write_image(folder / "after.jpg", image_bytes(1))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "next frame")
    await wait_for(
        hass,
        lambda: (
            coordinator.counters["files_refused_not_a_regular_file"] == 1
            and coordinator.counters["files_refused_outside_allowlist"] == 1
        ),
        "both refused",
    )
    assert state_of(hass, "sensor.secmon_sidecar_files_refused") == "2"


async def test_symlinks_out_of_the_allow_list_are_refused(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    outside: Path,
) -> None:
    """A file symlink and a camera-folder symlink pointing outside the allow-list: refused both
    while watching and on the start-up catch-up; nothing from there is analysed."""
    coordinator = coordinator_of(init_integration)
    os.symlink(outside / "secret.jpg", camera_root / "Front Door" / "leak.jpg")
    await wait_for(
        hass, lambda: coordinator.counters["files_refused_outside_allowlist"] == 1, "refusal"
    )

    # While secmon is down: a camera folder that is a symlink out, and a fresh file behind it.
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    os.symlink(outside, camera_root / "Evil")
    write_image(outside / "fresh.jpg", image_bytes(91), mtime=time.time() + 5)
    os.symlink(outside / "fresh.jpg", camera_root / "Front Door" / "fresh-leak.jpg")
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    coordinator = coordinator_of(init_integration)
    await coordinator.ingestor.async_wait_idle()
    await wait_for(
        hass,
        lambda: coordinator.counters["files_refused_outside_allowlist"] >= 2,
        "catch-up refusal",
    )
    assert "evil" not in coordinator.cameras
    assert coordinator.counters["frames_processed"] == 0
    write_image(camera_root / "Front Door" / "ok.jpg", image_bytes(92))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "a real frame")


async def test_oversized_file_is_refused_before_reading(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """A file over the frame limit (the issue's 35 MiB PNG) is refused and counted; the camera
    goes on."""
    coordinator = coordinator_of(init_integration)
    huge = camera_root / "Front Door" / "huge.png"
    with huge.open("wb") as f:
        f.truncate(MAX_FRAME_BYTES + 3 * 1024 * 1024)
    await wait_for(
        hass, lambda: coordinator.counters["files_refused_too_large"] == 1, "too-large refusal"
    )
    write_image(camera_root / "Front Door" / "next.jpg", image_bytes(2))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "next frame")
    assert coordinator.stream.sessions == 1


@pytest.mark.parametrize("started_before_setup", [False, True])
async def test_upload_written_in_chunks_is_read_once(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    camera_root: Path,
    caplog: pytest.LogCaptureFixture,
    started_before_setup: bool,
) -> None:
    """A file written slowly (pauses longer than the debounce) is read once, when closed; also
    when the start-up catch-up finds it half written."""
    if started_before_setup:
        # A first run, so the database (and its catch-up baseline) predates the upload.
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    data = image_bytes(3, size=(640, 480))
    step = len(data) // 5 + 1
    chunks = [data[start : start + step] for start in range(0, len(data), step)]
    with (camera_root / "Front Door" / "slow.jpg").open("wb") as f:
        if started_before_setup:
            f.write(chunks.pop(0))
            f.flush()
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await asyncio.sleep(0.8)
        for chunk in chunks:
            f.write(chunk)
            f.flush()
            await asyncio.sleep(0.8)  # four debounce intervals
    coordinator = coordinator_of(mock_config_entry)
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "the frame")
    await coordinator.ingestor.async_wait_idle()
    assert coordinator.counters["frames_skipped"] == 0
    assert "not a valid image" not in caplog.text


async def test_catch_up_takes_files_with_odd_mtimes(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """Files that landed while secmon was down with an mtime in the future (a camera's clock) or
    just now are taken by the catch-up, once each."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    write_image(camera_root / "Front Door" / "future.jpg", image_bytes(30), mtime=1_900_000_000)
    write_image(camera_root / "Front Door" / "now.jpg", image_bytes(31))
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    coordinator = coordinator_of(init_integration)
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 2, "both frames")
    await coordinator.ingestor.async_wait_idle()
    assert coordinator.counters["duplicates"] == 0


async def test_folders_with_colliding_names_stay_distinct_cameras(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """ "Front Door", "front_door", "FRONT-DOOR", "🚪", "🐕": five cameras, five devices, ids
    stable across a reload."""
    coordinator = coordinator_of(init_integration)
    names = ["Front Door", "front_door", "FRONT-DOOR", "🚪", "🐕"]
    for n, name in enumerate(names):
        write_image(camera_root / name / f"{n}.jpg", image_bytes(10 + n))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 5, "five frames")
    ids = {camera.name: camera.camera_id for camera in coordinator.cameras.values()}
    assert sorted(ids) == sorted(names)
    assert len(set(ids.values())) == 5
    assert ids["Front Door"] == "front_door"
    assert "unknown" not in ids.values()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), init_integration.entry_id)
    assert {d.name for d in devices} >= set(names)

    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    again = coordinator_of(init_integration)
    assert {c.name: c.camera_id for c in again.cameras.values()} == ids


async def test_ignored_files_are_logged_once_and_counted(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Files that are neither images nor video clips: one log line per extension, one count per
    file."""
    coordinator = coordinator_of(init_integration)
    folder = camera_root / "Front Door"
    for name in ("a.gif", "b.gif", "notes.txt"):
        write_image(folder / name, b"not an image")
    await wait_for(hass, lambda: coordinator.counters["files_ignored"] == 3, "three ignored")
    assert caplog.text.count("Ignoring files like") == 2


async def test_huge_pixel_count_refused_from_the_header(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """A small PNG declaring 13,000² pixels is refused before decoding (the sidecar's limit)."""
    data = png_header_only(13_000, 13_000)
    assert len(data) < 100_000
    with pytest.raises(TooManyPixelsError):
        check_image(data)
    coordinator = coordinator_of(init_integration)
    write_image(camera_root / "Front Door" / "bomb.png", data)
    await wait_for(hass, lambda: coordinator.counters["frames_skipped"] == 1, "skipped")
    assert coordinator.counters["frames_processed"] == 0


def test_exif_orientation_is_applied_when_drawing() -> None:
    """A phone-style JPEG stored 200x100 with orientation 6 is drawn upright (100x200), with the
    box where the sidecar (which turns it upright before detection) found it."""
    data = jpeg_with_orientation((200, 100), 6)
    out = render_detections(data, [Box("person", 0.9, 10, 150, 90, 195)])
    with Image.open(io.BytesIO(out)) as img:
        assert img.size == (100, 200)
        # The box outline (person colour, red-ish) is drawn low in the upright image.
        r, g, _b = img.convert("RGB").getpixel((10, 185))  # type: ignore[misc]
        assert r > 150 and g < 120


@pytest.mark.parametrize(
    ("make_path", "error"),
    [
        (lambda root, out: "", "invalid_path"),
        (lambda root, out: "   ", "invalid_path"),
        (lambda root, out: str(root / "a\0b.jpg"), "invalid_path"),
        (lambda root, out: str(root / "Front Door" / "pipe.jpg"), "file_not_readable"),
        (lambda root, out: str(root / "Front Door" / "sparse.jpg"), "file_not_readable"),
        (lambda root, out: str(root / "Front Door" / "leak.jpg"), "path_not_allowed"),
        (lambda root, out: str(root / "Front Door"), "file_not_readable"),
    ],
)
async def test_analyze_image_refuses_hostile_paths(
    *,
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    outside: Path,
    make_path: object,
    error: str,
) -> None:
    """Empty and NUL paths are validation errors; a FIFO does not hang the service, a 2 GB sparse
    file is refused without being read, a symlink out of the allow-list is refused."""
    folder = camera_root / "Front Door"
    os.mkfifo(folder / "pipe.jpg")
    with (folder / "sparse.jpg").open("wb") as f:
        f.truncate(2 * 1024**3)
    os.symlink(outside / "secret.jpg", folder / "leak.jpg")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "analyze_image",
            {"file_path": make_path(camera_root, outside)},  # type: ignore[operator]
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == error


async def test_the_allow_list_is_never_checked_on_the_event_loop(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    camera_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`is_allowed_path` resolves paths (file system calls): the watcher, the start-up catch-up
    and `analyze_image` call it in the executor, never on the loop's thread."""
    loop_thread = threading.get_ident()
    threads: list[int] = []
    allowed = hass.config.is_allowed_path

    def recording(path: str) -> bool:
        threads.append(threading.get_ident())
        return allowed(path)

    monkeypatch.setattr(hass.config, "is_allowed_path", recording)
    # A first run, so that the start-up catch-up of the second takes what came in between.
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    write_image(camera_root / "Front Door" / "before.jpg", image_bytes(40))
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = coordinator_of(mock_config_entry)
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "catch-up")
    write_image(camera_root / "Front Door" / "watched.jpg", image_bytes(41))  # watcher
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 2, "watched")
    calls = len(threads)
    await hass.services.async_call(
        DOMAIN,
        "analyze_image",
        {"file_path": str(camera_root / "Front Door" / "watched.jpg")},
        blocking=True,
        return_response=True,
    )
    assert len(threads) > calls >= 2
    assert loop_thread not in threads


def test_a_clip_claiming_to_start_in_the_future_gets_its_file_time(tmp_path: Path) -> None:
    """Container metadata saying the clip was recorded in 2100 (which would place its event
    after everything else, forever) is not believed: the file's time is used instead."""
    path = tmp_path / "future.mp4"
    write_test_clip(path, frames=10, fps=5, codec="mpeg4", creation_time="2100-01-01T00:00:00Z")
    clip = sample_clip(path, lambda _p: True, MAX_FRAME_BYTES, 2.0, 20)
    assert clip.start_source == "file_mtime"
    assert clip.started_at <= time.time()
