"""From a settled image file to a frame in the frame queue.

One worker per entry takes paths in arrival order, reads and checks each image in the executor,
skips invalid files (one warning each, counted) and duplicates (the same content in the same camera
folder, persistent; the same image in two cameras' folders is two frames), and
writes the frame to the frame queue before the stream ever sees it. At start, a catch-up scan
submits the files that landed while secmon was not running.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from homeassistant.core import HomeAssistant

from ..const import LOGGER, MAX_CLIP_BYTES
from ..storage.frame_queue import FrameQueue, QueuedFrame
from .files import RefusedFileError, read_untrusted
from .imaging import CheckedImage, InvalidImageError, check_image
from .video import InvalidClipError, SampledClip, clip_frame_hash, sample_clip
from .watcher import WRITE_GRACE, is_video_name, scan_images

if TYPE_CHECKING:
    from ..coordinator import SecmonCoordinator

# Paths already taken (with their size and mtime), so repeated events for an unchanged file and
# the start-up scan overlapping the watcher do nothing.
_RECENT_PATHS = 4096

_T = TypeVar("_T")


def frame_key(camera_id: str, content_sha256: str) -> str:
    """The dedupe key of an image in a camera's folder; its first 32 hex digits are the frame id.

    Per camera: identical bytes dropped into two cameras' folders are two frames, each analysed
    and batched with its own camera.
    """
    return hashlib.sha256(f"{camera_id}\0{content_sha256}".encode()).hexdigest()


def frame_id_for(camera_id: str, content_sha256: str) -> str:
    """The frame id (the sidecar's idempotency key) of an image in a camera's folder."""
    return frame_key(camera_id, content_sha256)[:32]


@dataclass(frozen=True, slots=True)
class _ReadImage:
    data: bytes
    checked: CheckedImage | None
    error: str | None
    size: int
    mtime: float


def _read(
    path: Path, is_allowed: Callable[[str], bool], max_bytes: int, max_pixels: int
) -> _ReadImage:
    read = read_untrusted(path, is_allowed, max_bytes)
    try:
        checked: CheckedImage | None = check_image(read.data, max_pixels)
        error = None
    except InvalidImageError as err:
        checked, error = None, str(err)
    return _ReadImage(read.data, checked, error, read.size, read.mtime)


def _size_and_mtime(path: Path) -> tuple[int, float] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime


class FrameIngestor:
    """Turns settled image paths into queued frames."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        root: Path,
        coordinator: SecmonCoordinator,
        queue: FrameQueue,
        on_enqueued: Callable[[], None],
    ) -> None:
        """`on_enqueued` wakes the stream; cameras and counters are the coordinator's."""
        self.hass = hass
        self.root = root
        self.coordinator = coordinator
        self.queue = queue
        self._on_enqueued = on_enqueued
        self._paths: asyncio.Queue[Path] = asyncio.Queue()
        self._recent: OrderedDict[Path, tuple[int, float]] = OrderedDict()
        self._refused: OrderedDict[tuple[Path, str], None] = OrderedDict()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, path: Path) -> None:
        """Queue a settled image path for ingestion (called on the loop)."""
        self._idle.clear()
        self._paths.put_nowait(path)

    async def async_wait_idle(self) -> None:
        """Wait until every submitted path has been handled (tests, diagnostics)."""
        await self._idle.wait()

    async def async_catch_up(
        self, folders: list[Path], settle: Callable[[Path], None] | None = None
    ) -> None:
        """Take files newer than the newest one seen per camera (those that landed while down).

        A file changed within the last WRITE_GRACE seconds may still be being written: it goes
        to `settle` (the watcher's completeness check) instead of straight in."""
        known = await self.hass.async_add_executor_job(self.queue.cameras)
        baseline = await self.hass.async_add_executor_job(self.queue.baseline)
        found: list[tuple[float, Path]] = []
        for folder in folders:
            camera_id = self.coordinator.camera_id_for(folder.name)
            _name, last_seen = known.get(camera_id, (folder.name, None))
            since = last_seen if last_seen is not None else baseline
            scanned = await self.hass.async_add_executor_job(scan_images, folder, since)
            # Files as old as the newest one taken may not all have been taken (coarse
            # timestamps); those that were are not news.
            same_time = [str(path) for mtime, path in scanned if mtime == since]
            taken = await self.hass.async_add_executor_job(self.queue.known_paths, same_time)
            found.extend((mtime, path) for mtime, path in scanned if str(path) not in taken)
        found.sort()
        if found:
            LOGGER.info(
                "Catching up on %s image(s) that arrived while secmon was not running", len(found)
            )
        recent = time.time() - WRITE_GRACE
        for mtime, path in found:
            if settle is not None and mtime >= recent:
                settle(path)
            else:
                self.submit(path)

    async def async_run(self) -> None:
        """The worker (an entry background task)."""
        while True:
            path = await self._paths.get()
            try:
                await self._async_ingest(path)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("Unexpected error while taking %s", path)
            finally:
                if self._paths.empty():
                    self._idle.set()

    async def _async_ingest(self, path: Path) -> None:
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return
        if len(parts) < 2:
            return
        camera_name = parts[0]
        camera_id = self.coordinator.camera_id_for(camera_name)
        if is_video_name(path.name):
            await self._async_ingest_clip(path, camera_id, camera_name)
            return
        read = await self._async_read(
            path,
            _read,
            path,
            self.hass.config.is_allowed_path,
            self.coordinator.max_frame_bytes,
            self.coordinator.max_pixels,
        )
        if read is None or not self._first_sight(
            path, (read.size, read.mtime), camera_id, camera_name
        ):
            return

        if read.checked is None:
            await self._async_skip(
                path, camera_id, camera_name, read.mtime, f"not a valid image ({read.error})"
            )
            return

        key = frame_key(camera_id, read.checked.sha256)
        frame = QueuedFrame(
            frame_id=key[:32],
            camera_id=camera_id,
            camera_name=camera_name,
            path=str(path),
            content_type=read.checked.content_type,
            captured_at=read.mtime,
            image=read.data,
        )
        outcome = await self.hass.async_add_executor_job(
            self.queue.enqueue, frame, key, self.coordinator.stream.in_flight_ids
        )
        await self.hass.async_add_executor_job(
            self.queue.mark_seen, camera_id, camera_name, read.mtime
        )
        if not outcome.accepted:
            LOGGER.debug(
                "%s is a duplicate of frame %s; not sent again", path, outcome.duplicate_of
            )
            await self.hass.async_add_executor_job(self.queue.bump, "duplicates", 1)
            self.coordinator.async_count("duplicates")
            return
        if outcome.dropped:
            self.coordinator.async_frames_dropped(len(outcome.dropped))
        depth = await self.hass.async_add_executor_job(self.queue.pending_count)
        self.coordinator.async_set_queue_depth(depth)
        self._on_enqueued()

    async def _async_ingest_clip(self, path: Path, camera_id: str, camera_name: str) -> None:
        """A settled video clip: its sampled frames go into the queue like images, each with
        the clip's start time plus its offset. A clip that cannot be decoded is skipped and
        counted like an invalid image."""
        settings = self.coordinator.settings
        try:
            clip: SampledClip | None = await self._async_read(
                path,
                functools.partial(sample_clip, max_pixels=self.coordinator.max_pixels),
                path,
                self.hass.config.is_allowed_path,
                MAX_CLIP_BYTES,
                settings.clip_rate,
                settings.clip_max_frames,
            )
        except InvalidClipError as err:
            signature = await self.hass.async_add_executor_job(_size_and_mtime, path)
            if signature is None or not self._first_sight(path, signature, camera_id, camera_name):
                return
            await self._async_skip(
                path,
                camera_id,
                camera_name,
                signature[1],
                f"not a video clip that can be decoded ({err})",
            )
            return
        if clip is None or not self._first_sight(
            path, (clip.size, clip.mtime), camera_id, camera_name
        ):
            return
        LOGGER.debug(
            "%s: %s clip of %.1f s from %s, %s frame(s) sampled",
            path,
            clip.codec,
            clip.duration or 0.0,
            clip.start_source,
            len(clip.frames),
        )
        accepted = duplicates = 0
        for sampled in clip.frames:
            key = frame_key(camera_id, clip_frame_hash(clip.sha256, sampled.offset))
            frame = QueuedFrame(
                frame_id=key[:32],
                camera_id=camera_id,
                camera_name=camera_name,
                path=str(path),
                content_type="image/jpeg",
                captured_at=clip.started_at + sampled.offset,
                image=sampled.jpeg,
                clip_offset=sampled.offset,
            )
            outcome = await self.hass.async_add_executor_job(
                self.queue.enqueue, frame, key, self.coordinator.stream.in_flight_ids
            )
            if not outcome.accepted:
                duplicates += 1
                continue
            accepted += 1
            if outcome.dropped:
                self.coordinator.async_frames_dropped(len(outcome.dropped))
        await self.hass.async_add_executor_job(
            self.queue.mark_seen, camera_id, camera_name, clip.mtime
        )
        if duplicates:
            LOGGER.debug("%s: %s frame(s) already taken; not sent again", path, duplicates)
            await self.hass.async_add_executor_job(self.queue.bump, "duplicates", duplicates)
            self.coordinator.async_count("duplicates", duplicates)
        if accepted:
            depth = await self.hass.async_add_executor_job(self.queue.pending_count)
            self.coordinator.async_set_queue_depth(depth)
            self._on_enqueued()

    async def _async_read(self, path: Path, job: Callable[..., _T], *args: object) -> _T | None:
        """`job(*args)` in the executor; None when `path` vanished, must not be read (counted
        once) or could not be read. Other errors, such as an undecodable file, propagate."""
        try:
            return await self.hass.async_add_executor_job(job, *args)
        except FileNotFoundError:
            LOGGER.debug("%s vanished before it could be read", path)
        except RefusedFileError as err:
            await self._async_refuse(path, err)
        except OSError as err:
            LOGGER.warning("Could not read %s: %s", path, err)
        return None

    def _first_sight(
        self, path: Path, signature: tuple[int, float], camera_id: str, camera_name: str
    ) -> bool:
        """False when `path` was already taken with this (size, mtime); otherwise remembers it,
        makes sure its camera exists and returns True."""
        if self._recent.get(path) == signature:
            return False
        self._remember(path, *signature)
        self.coordinator.async_ensure_camera(camera_id, camera_name, self.root / camera_name)
        return True

    async def _async_skip(
        self, path: Path, camera_id: str, camera_name: str, mtime: float, reason: str
    ) -> None:
        """A file that cannot be analysed: one warning, counted as a skipped frame."""
        LOGGER.warning("Skipping %s: %s", path, reason)
        await self.hass.async_add_executor_job(self.queue.bump, "frames_skipped", 1)
        await self.hass.async_add_executor_job(self.queue.mark_seen, camera_id, camera_name, mtime)
        self.coordinator.async_count("frames_skipped")

    async def _async_refuse(self, path: Path, err: RefusedFileError) -> None:
        """A file that must not be read: one warning and one count per path and reason."""
        key = (path, err.reason)
        if key in self._refused:
            return
        self._refused[key] = None
        while len(self._refused) > _RECENT_PATHS:
            self._refused.popitem(last=False)
        LOGGER.warning("Refusing %s: %s", path, err)
        counter = f"files_refused_{err.reason}"
        await self.hass.async_add_executor_job(self.queue.bump, counter, 1)
        self.coordinator.async_count(counter)

    def _remember(self, path: Path, size: int, mtime: float) -> None:
        self._recent[path] = (size, mtime)
        self._recent.move_to_end(path)
        while len(self._recent) > _RECENT_PATHS:
            self._recent.popitem(last=False)
