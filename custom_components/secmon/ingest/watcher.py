"""Watching the camera root: camera folders, new images, debounce.

Each immediate sub-folder of the root is a camera; images may sit in nested (date) folders below
it. watchdog's native observer (inotify) is the default; the polling observer serves NFS/SMB mounts
where no change events arrive. Observer threads only hand paths over to the event loop; debounce
timers live on the loop and everything that touches the disk runs in the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import slugify
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ..const import IMAGE_EXTENSIONS, POLLING_INTERVAL


def camera_id_for(folder_name: str) -> str:
    """`Front Door` -> `front_door`."""
    return slugify(folder_name) or "camera"


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the extensions we take (case-insensitive)."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def list_camera_folders(root: Path) -> list[Path]:
    """The immediate, non-hidden sub-folders of the root (blocking)."""
    return sorted(
        Path(entry.path)
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    )


def scan_images(folder: Path, newer_than: float | None = None) -> list[tuple[float, Path]]:
    """Images below `folder` (recursively), as (mtime, path) oldest first (blocking)."""
    found: list[tuple[float, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not is_image_name(name):
                continue
            path = Path(dirpath, name)
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if newer_than is None or mtime >= newer_than:
                found.append((mtime, path))
    found.sort()
    return found


class _Handler(FileSystemEventHandler):
    """Runs in the observer's thread: hand every interesting path to the loop."""

    def __init__(self, forward: Callable[[str, bool], None]) -> None:
        self._forward = forward

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, (FileMovedEvent, DirMovedEvent)):
            path = event.dest_path
        elif isinstance(
            event, (FileCreatedEvent, FileModifiedEvent, FileClosedEvent, DirCreatedEvent)
        ):
            path = event.src_path
        else:
            return
        self._forward(os.fsdecode(path), event.is_directory)


class FolderWatcher:
    """Discovers camera folders and reports images once they stopped changing."""

    def __init__(
        self,
        hass: HomeAssistant,
        root: Path,
        *,
        polling: bool,
        debounce: float,
        on_camera: Callable[[str, str, Path], None],
        on_image: Callable[[Path], None],
    ) -> None:
        """`on_camera(camera_id, name, folder)` and `on_image(path)` are called on the loop."""
        self.hass = hass
        self.root = root
        self.polling = polling
        self.debounce = debounce
        self._on_camera = on_camera
        self._on_image = on_image
        self._observer: BaseObserver | None = None
        self._timers: dict[Path, CALLBACK_TYPE] = {}
        self._scans: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def async_start(self) -> list[Path]:
        """Register the existing camera folders and start watching; returns the camera folders."""
        folders = await self.hass.async_add_executor_job(list_camera_folders, self.root)
        for folder in folders:
            self._on_camera(camera_id_for(folder.name), folder.name, folder)
        await self.hass.async_add_executor_job(self._start_observer)
        return folders

    def _start_observer(self) -> None:
        observer: BaseObserver = (
            PollingObserver(timeout=POLLING_INTERVAL) if self.polling else Observer()
        )
        observer.schedule(_Handler(self._forward), os.fspath(self.root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    async def async_stop(self) -> None:
        """Stop the observer thread and every pending debounce timer."""
        self._stopped = True
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        for task in self._scans:
            task.cancel()
        self._scans.clear()
        observer, self._observer = self._observer, None
        if observer is not None:
            await self.hass.async_add_executor_job(_stop_observer, observer)

    def _forward(self, path: str, is_dir: bool) -> None:
        """Observer thread -> loop."""
        if self._stopped:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self.hass.loop.call_soon_threadsafe(self._async_on_path, Path(path), is_dir)

    @callback
    def _async_on_path(self, path: Path, is_dir: bool) -> None:
        if self._stopped:
            return
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return
        if not parts or any(part.startswith(".") for part in parts):
            return
        folder = self.root / parts[0]
        if is_dir or len(parts) > 1:
            self._on_camera(camera_id_for(parts[0]), parts[0], folder)
        if is_dir:
            # A folder moved or copied in brings files that produce no events of their own.
            task = self.hass.async_create_task(self._async_scan_new_folder(path), eager_start=False)
            self._scans.add(task)
            task.add_done_callback(self._scans.discard)
            return
        if len(parts) > 1 and is_image_name(path.name):
            self._debounce(path)

    async def _async_scan_new_folder(self, folder: Path) -> None:
        try:
            images = await self.hass.async_add_executor_job(scan_images, folder)
        except OSError:
            return
        for _mtime, path in images:
            self._debounce(path)

    @callback
    def _debounce(self, path: Path) -> None:
        if self._stopped:
            return
        if (cancel := self._timers.pop(path, None)) is not None:
            cancel()
        self._timers[path] = async_call_later(
            self.hass,
            self.debounce,
            HassJob(partial(self._async_settled, path), cancel_on_shutdown=True),
        )

    @callback
    def _async_settled(self, path: Path, _now: object) -> None:
        self._timers.pop(path, None)
        if not self._stopped:
            self._on_image(path)


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    observer.join(timeout=10)
