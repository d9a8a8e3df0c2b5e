"""The folder watcher on real directories (native events and polling)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant

from custom_components.secmon.ingest import watcher as watcher_module
from custom_components.secmon.ingest.watcher import FolderWatcher, camera_id_for, scan_images

from .helpers import image_bytes, wait_for, write_image


class Recorder:
    """Collects what the watcher reports."""

    def __init__(self) -> None:
        self.cameras: dict[str, tuple[str, Path]] = {}
        self.images: list[Path] = []

    def on_camera(self, camera_id: str, name: str, folder: Path) -> None:
        self.cameras[camera_id] = (name, folder)

    def on_image(self, path: Path) -> None:
        self.images.append(path)


@pytest.fixture
async def start_watcher(hass: HomeAssistant) -> AsyncGenerator[Callable[..., object]]:
    """Start watchers on a root; stops them at the end."""
    started: list[FolderWatcher] = []

    async def start(root: Path, *, polling: bool = False) -> tuple[FolderWatcher, Recorder]:
        recorder = Recorder()
        watcher = FolderWatcher(
            hass,
            root,
            polling=polling,
            debounce=0.2,
            on_camera=recorder.on_camera,
            on_image=recorder.on_image,
        )
        await watcher.async_start()
        started.append(watcher)
        return watcher, recorder

    yield start
    for watcher in started:
        await watcher.async_stop()


def test_camera_ids() -> None:
    """Folder names become entity-friendly ids."""
    assert camera_id_for("Front Door") == "front_door"
    assert camera_id_for("Garage-2") == "garage_2"
    assert camera_id_for("Café Terrasse") == "cafe_terrasse"


def test_scan_images_filters_and_orders(tmp_path: Path) -> None:
    """Recursive, image extensions only (any case), no hidden files, oldest first."""
    cam = tmp_path / "Cam"
    write_image(cam / "2026" / "11" / "b.JPG", b"x", mtime=200)
    write_image(cam / "a.png", b"x", mtime=100)
    write_image(cam / "c.jpeg", b"x", mtime=300)
    write_image(cam / "notes.txt", b"x", mtime=150)
    write_image(cam / ".hidden.jpg", b"x", mtime=150)
    write_image(cam / ".tmp" / "d.jpg", b"x", mtime=150)
    assert [p.name for _, p in scan_images(cam)] == ["a.png", "b.JPG", "c.jpeg"]
    assert [p.name for _, p in scan_images(cam, newer_than=200)] == ["b.JPG", "c.jpeg"]


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
async def test_watcher_reports_cameras_and_settled_images(
    hass: HomeAssistant, tmp_path: Path, start_watcher: Callable[..., object], polling: bool
) -> None:
    """Existing and new camera folders, nested date folders, extension filter, debounce."""
    root = tmp_path / "cameras"
    (root / "Front Door").mkdir(parents=True)
    (root / ".trash").mkdir()
    watcher, recorder = await start_watcher(root, polling=polling)  # type: ignore[misc]
    assert recorder.cameras == {"front_door": ("Front Door", root / "Front Door")}

    nested = root / "Front Door" / "2026-11-20" / "001"
    write_image(nested / "snap.jpg", image_bytes(1))
    (root / "Front Door" / "readme.txt").write_text("not an image")
    # Written in pieces: reported once, after it stopped changing.
    growing = root / "Front Door" / "growing.PNG"
    data = image_bytes(2, fmt="PNG")
    with growing.open("wb") as f:
        f.write(data[:100])
        f.flush()
        f.write(data[100:])
    (root / "Back Yard").mkdir()
    write_image(root / "Back Yard" / "x.jpeg", image_bytes(3))

    expected = {nested / "snap.jpg", growing, root / "Back Yard" / "x.jpeg"}
    await wait_for(hass, lambda: set(recorder.images) >= expected, "images")
    await hass.async_block_till_done()
    assert sorted(recorder.images) == sorted(expected)
    assert recorder.cameras["back_yard"] == ("Back Yard", root / "Back Yard")
    assert ".trash" not in {name for name, _ in recorder.cameras.values()}

    await watcher.async_stop()  # type: ignore[attr-defined]
    write_image(root / "Front Door" / "after-stop.jpg", image_bytes(4))
    await hass.async_block_till_done()
    assert root / "Front Door" / "after-stop.jpg" not in recorder.images


async def test_folder_moved_in_is_scanned(
    hass: HomeAssistant, tmp_path: Path, start_watcher: Callable[..., object]
) -> None:
    """A camera folder moved into the root brings images that raise no events of their own."""
    root = tmp_path / "cameras"
    root.mkdir()
    staging = tmp_path / "staging" / "Driveway"
    write_image(staging / "day" / "a.jpg", image_bytes(5))
    _watcher, recorder = await start_watcher(root)  # type: ignore[misc]
    shutil.move(staging, root / "Driveway")
    await wait_for(hass, lambda: bool(recorder.images), "moved-in image")
    assert recorder.images == [root / "Driveway" / "day" / "a.jpg"]
    assert "driveway" in recorder.cameras


@pytest.mark.parametrize("how", ["moved in", "created"])
async def test_finished_images_in_a_new_date_folder_are_not_held_back(
    hass: HomeAssistant,
    tmp_path: Path,
    start_watcher: Callable[..., object],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """A camera's new date folder arrives with finished images in it (moved in, or renamed into
    place before the folder is watched): watchdog announces each with a created event only. They
    are reported once they stopped changing, not after the grace given to files still open."""
    monkeypatch.setattr(watcher_module, "WRITE_GRACE", 3600.0)
    root = tmp_path / "cameras"
    (root / "Front Door").mkdir(parents=True)
    _watcher, recorder = await start_watcher(root)  # type: ignore[misc]
    expected = []
    if how == "moved in":
        staging = tmp_path / "staging" / "2026-11-21"
        for n in range(3):
            write_image(staging / f"img-{n}.jpg", image_bytes(n))
        shutil.move(staging, root / "Front Door" / "2026-11-21")
        expected = [root / "Front Door" / "2026-11-21" / f"img-{n}.jpg" for n in range(3)]
    else:
        # os.mkdir then renames in a tight loop: some land before watchdog watches the folder.
        for day in range(20):
            folder = root / "Front Door" / f"2026-11-{day + 1:02}"
            folder.mkdir()
            for n in range(3):
                write_image(folder / f"img-{n}.jpg", image_bytes(day * 3 + n))
                expected.append(folder / f"img-{n}.jpg")
    await wait_for(hass, lambda: set(recorder.images) >= set(expected), "every image", limit=120)
    await hass.async_block_till_done()
    assert sorted(recorder.images) == sorted(expected)


async def test_an_empty_new_file_waits_for_its_writer(
    hass: HomeAssistant, tmp_path: Path, start_watcher: Callable[..., object]
) -> None:
    """A file created empty (an upload that has not sent its first bytes) is not reported while
    empty; once written and closed it is reported once."""
    root = tmp_path / "cameras"
    (root / "Front Door").mkdir(parents=True)
    _watcher, recorder = await start_watcher(root)  # type: ignore[misc]
    path = root / "Front Door" / "slow.jpg"
    with path.open("wb") as f:
        f.flush()
        # Longer than the debounce and the quiet time together: an empty file would be taken.
        await asyncio.sleep(3.0)
        await hass.async_block_till_done()
        assert recorder.images == []
        f.write(image_bytes(7))
    await wait_for(hass, lambda: bool(recorder.images), "the written image")
    await hass.async_block_till_done()
    assert recorder.images == [path]


async def test_a_late_folder_scan_does_not_report_an_announced_image_again(
    hass: HomeAssistant, tmp_path: Path, start_watcher: Callable[..., object]
) -> None:
    """A new folder's scan runs in the executor and may finish after watchdog's own events for
    the files in it were reported: the scan's find of the same file is not a second report."""
    root = tmp_path / "cameras"
    (root / "Front Door").mkdir(parents=True)
    watcher, recorder = await start_watcher(root)  # type: ignore[misc]
    path = root / "Front Door" / "2026-11-21" / "img-0.jpg"
    write_image(path, image_bytes(1))
    await wait_for(hass, lambda: bool(recorder.images), "the announced image")
    watcher.async_check_later(path)  # type: ignore[attr-defined]
    # Longer than the debounce and the quiet time together: a second report would have come.
    await asyncio.sleep(watcher_module.QUIET_SECONDS + 2.0)
    await hass.async_block_till_done()
    assert recorder.images == [path]
    # A later change of the same file is announced by its own events and reported again.
    write_image(path, image_bytes(2))
    await wait_for(hass, lambda: len(recorder.images) == 2, "the rewritten image")
