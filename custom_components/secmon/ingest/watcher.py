"""Watching the camera root: camera folders, new images, debounce, completeness.

Each immediate sub-folder of the root is a camera; images may sit in nested (date) folders below
it. watchdog's native observer (inotify) is the default; the polling observer serves NFS/SMB mounts
where no change events arrive. Observer threads only hand paths over to the event loop; debounce
timers live on the loop and everything that touches the disk runs in the executor.

An image is reported once it is complete: renamed into place or closed after writing (inotify's
close-write), or, where no such event comes (polling, a writer that keeps the file open), once
its size and mtime stayed the same over one debounce interval and for at least QUIET_SECONDS.
Files the start-up catch-up finds changed recently go through the same check. A camera folder
that resolves outside the allowed folders is not a camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import time
from collections import OrderedDict
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

from ..const import IMAGE_EXTENSIONS, LOGGER, POLLING_INTERVAL, VIDEO_EXTENSIONS

# How long a file written without a close-write event may stay open before its size alone decides.
WRITE_GRACE = 30.0
# Without an event saying the writer is done, a file must also be unchanged for this long (a
# writer pausing between chunks for less is not mistaken for one that finished).
QUIET_SECONDS = 2.0
_TRACKED_PATHS = 4096

# What an event says about a file's writer (see `_Handler`).
DONE = "done"
WRITING = "writing"
SEEN = "seen"


def camera_id_for(folder_name: str) -> str:
    """`Front Door` -> `front_door`; a name without any letter or digit that slugify keeps (emoji)
    gets an id derived from the name itself, so two such folders stay two cameras."""
    slug = slugify(folder_name)
    if not slug or (slug == "unknown" and folder_name.strip().lower() != "unknown"):
        return f"camera_{name_hash(folder_name)}"
    return slug


def name_hash(folder_name: str) -> str:
    """A short, stable hash of a folder name (disambiguates ids)."""
    return hashlib.sha256(folder_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the extensions we take, images or video clips
    (case-insensitive)."""
    suffix = Path(name).suffix.lower()
    return not name.startswith(".") and (suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS)


def is_video_name(name: str) -> bool:
    """Whether a file name is a video clip's (case-insensitive)."""
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def list_camera_folders(root: Path, is_allowed: Callable[[str], bool] | None = None) -> list[Path]:
    """The immediate, non-hidden sub-folders of the root that resolve inside the allowed folders
    (blocking)."""
    folders = []
    for entry in os.scandir(root):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        if is_allowed is not None and not is_allowed(os.path.realpath(entry.path)):
            LOGGER.warning(
                "Ignoring camera folder %s: it resolves to %s, outside the allowed folders",
                entry.path,
                os.path.realpath(entry.path),
            )
            continue
        folders.append(Path(entry.path))
    return sorted(folders)


_NOT_REGULAR = (-1, -1)


def file_signature(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a regular file, _NOT_REGULAR for anything else (a symlink, FIFO,
    device), None if it is gone (blocking)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return _NOT_REGULAR
    return info.st_size, info.st_mtime_ns


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

    def __init__(self, forward: Callable[[str, bool, str], None]) -> None:
        self._forward = forward

    def on_any_event(self, event: FileSystemEvent) -> None:
        # DONE: the writer is done with the file (renamed into place, or closed). WRITING: it was
        # written to, so a close-write will follow. SEEN: it exists; a created event says no
        # more, because watchdog also makes one for each file already inside a folder that
        # appears (created or moved in), and those files were finished before it was watched.
        if isinstance(event, (FileMovedEvent, DirMovedEvent)):
            path, state = event.dest_path, DONE
        elif isinstance(event, FileClosedEvent):
            path, state = event.src_path, DONE
        elif isinstance(event, FileModifiedEvent):
            path, state = event.src_path, WRITING
        elif isinstance(event, (FileCreatedEvent, DirCreatedEvent)):
            path, state = event.src_path, SEEN
        else:
            return
        self._forward(os.fsdecode(path), event.is_directory, state)


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
        on_ignored: Callable[[Path], None] | None = None,
        resolve_camera_id: Callable[[str], str] = camera_id_for,
        is_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        """`on_camera(camera_id, name, folder)`, `on_image(path)` and `on_ignored(path)` (a file
        that is not an image, once per path) are called on the loop. `is_allowed` is
        `hass.config.is_allowed_path` (called in the executor)."""
        self.hass = hass
        self.root = root
        self.polling = polling
        self.debounce = debounce
        self._on_camera = on_camera
        self._on_image = on_image
        self._on_ignored = on_ignored
        self._camera_id = resolve_camera_id
        self._is_allowed = is_allowed
        self._observer: BaseObserver | None = None
        self._timers: dict[Path, CALLBACK_TYPE] = {}
        # Written but not yet closed (native events): path -> when its last change was seen.
        self._writing: dict[Path, float] = {}
        # Size and mtime at the settle checks, for files no completion event vouches for, with
        # when (monotonic) they were first seen that way.
        self._signatures: dict[Path, tuple[tuple[int, int], float]] = {}
        # Paths whose last event did not say the writer is done.
        self._unvouched: set[Path] = set()
        self._ignored: OrderedDict[Path, None] = OrderedDict()
        # Reported since their last event: a scan that finds one of them later does not report
        # it again.
        self._reported: OrderedDict[Path, None] = OrderedDict()
        self._ignored_suffixes: set[str] = set()
        self._scans: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def async_start(self) -> list[Path]:
        """Register the existing camera folders and start watching; returns the camera folders."""
        folders = await self.hass.async_add_executor_job(
            list_camera_folders, self.root, self._is_allowed
        )
        for folder in folders:
            self._on_camera(self._camera_id(folder.name), folder.name, folder)
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
        self._writing.clear()
        self._signatures.clear()
        self._unvouched.clear()
        self._reported.clear()
        for task in self._scans:
            task.cancel()
        self._scans.clear()
        observer, self._observer = self._observer, None
        if observer is not None:
            await self.hass.async_add_executor_job(_stop_observer, observer)

    def _forward(self, path: str, is_dir: bool, state: str) -> None:
        """Observer thread -> loop."""
        if self._stopped:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self.hass.loop.call_soon_threadsafe(self._async_on_path, Path(path), is_dir, state)

    @callback
    def _async_on_path(self, path: Path, is_dir: bool, state: str = SEEN) -> None:
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
            self._on_camera(self._camera_id(parts[0]), parts[0], folder)
        if is_dir:
            # A folder moved or copied in brings files that produce no events of their own.
            task = self.hass.async_create_task(self._async_scan_new_folder(path), eager_start=False)
            self._scans.add(task)
            task.add_done_callback(self._scans.discard)
            return
        if len(parts) < 2:
            return
        if not is_image_name(path.name):
            self._async_ignored(path)
            return
        self._reported.pop(path, None)
        if state == DONE:
            self._forget(path)
        else:
            self._unvouched.add(path)
            if state == WRITING and not self.polling:
                self._writing[path] = time.monotonic()
        self._debounce(path)

    @callback
    def async_check_later(self, path: Path) -> None:
        """Report `path` once it is complete (a file found by a scan, not announced by an
        event)."""
        if self._stopped or path in self._reported:
            return
        self._unvouched.add(path)
        self._debounce(path)

    @callback
    def _async_ignored(self, path: Path) -> None:
        """A file that is not an image: logged once per extension, reported once per path."""
        if path in self._ignored:
            return
        self._ignored[path] = None
        while len(self._ignored) > _TRACKED_PATHS:
            self._ignored.popitem(last=False)
        suffix = path.suffix.lower() or "(none)"
        if suffix not in self._ignored_suffixes:
            self._ignored_suffixes.add(suffix)
            LOGGER.info(
                "Ignoring files like %s: only %s files are analysed",
                path,
                ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)),
            )
        if self._on_ignored is not None:
            self._on_ignored(path)

    async def _async_scan_new_folder(self, folder: Path) -> None:
        # os.walk skips what it cannot read (a folder gone again included): nothing raises.
        images = await self.hass.async_add_executor_job(scan_images, folder)
        for _mtime, path in images:
            self.async_check_later(path)

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
        if self._stopped:
            return
        if path not in self._unvouched:
            self._report(path)
            return
        task = self.hass.async_create_task(self._async_check_complete(path), eager_start=False)
        self._scans.add(task)
        task.add_done_callback(self._scans.discard)

    async def _async_check_complete(self, path: Path) -> None:
        """No event said the writer is done: a special file goes on at once (the ingestor
        refuses it), one being written (or still empty) waits for its close-write (up to
        WRITE_GRACE), anything else
        once its size and mtime stayed the same over one debounce interval and it has not
        changed for QUIET_SECONDS."""
        signature = await self.hass.async_add_executor_job(file_signature, path)
        if self._stopped:
            return
        if signature is None:
            self._forget(path)
            return
        if signature == _NOT_REGULAR:
            self._forget(path)
            self._report(path)
            return
        if signature[0] == 0 and not self.polling:
            # Created, nothing written yet: its writer has just opened it (a finished upload that
            # a folder brought in is never empty). A close-write will come.
            self._writing.setdefault(path, time.monotonic())
        changed_at = self._writing.get(path)
        if changed_at is not None and time.monotonic() - changed_at < WRITE_GRACE:
            self._debounce(path)
            return
        # Measured on our clock, not by the file's mtime (cameras and FTP servers set any time).
        now = time.monotonic()
        seen = self._signatures.get(path)
        if seen is not None and seen[0] == signature:
            if now - seen[1] >= max(self.debounce, QUIET_SECONDS):
                self._forget(path)
                self._report(path)
                return
        else:
            self._signatures[path] = (signature, now)
            while len(self._signatures) > _TRACKED_PATHS:
                del self._signatures[next(iter(self._signatures))]
        self._debounce(path)

    @callback
    def _report(self, path: Path) -> None:
        self._reported[path] = None
        self._reported.move_to_end(path)
        while len(self._reported) > _TRACKED_PATHS:
            self._reported.popitem(last=False)
        self._on_image(path)

    @callback
    def _forget(self, path: Path) -> None:
        self._writing.pop(path, None)
        self._signatures.pop(path, None)
        self._unvouched.discard(path)


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    observer.join(timeout=10)
