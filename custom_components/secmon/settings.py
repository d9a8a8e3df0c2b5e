"""One running secmon entry: durable queue, folder watcher, ingest worker, stream, state hub."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback

from .verdicts.announce import async_announce_verdict
from .link.client import SidecarAddress, parse_address
from .const import (
    CONF_ADDRESS,
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CAMERA_ROOT,
    CONF_CLASSES,
    CONF_CLEAR_DELAY,
    CONF_DEBOUNCE,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
    CONF_POLLING,
    CONF_QUEUE_BOUND,
    CONF_THRESHOLD,
    CONF_TOKEN,
    DEFAULT_BATCH_IDLE,
    DEFAULT_BATCH_WINDOW,
    DEFAULT_CLASSES,
    DEFAULT_CLEAR_DELAY,
    DEFAULT_DEBOUNCE,
    DEFAULT_FAST_PATH_CONFIDENCE,
    DEFAULT_FAST_PATH_LABELS,
    DEFAULT_POLLING,
    DEFAULT_QUEUE_BOUND,
    DEFAULT_THRESHOLD,
    DOMAIN,
    LOGGER,
)
from .storage.frame_queue import DurableQueue
from .hub import SecmonHub
from .ingest.ingestor import FrameIngestor
from .link.proto import secmon_pb2
from .link.stream import SidecarStream
from .storage.verdict_store import VerdictStore
from .verdicts.records import VerdictRecord
from .ingest.watcher import FolderWatcher, camera_id_for, scan_images


@dataclass(frozen=True, slots=True)
class SecmonSettings:
    """The entry's data and options, typed."""

    address: SidecarAddress
    camera_root: Path
    token: str | None
    threshold: float
    debounce: float
    polling: bool
    classes: tuple[str, ...]
    clear_delay: float
    queue_bound: int
    batch_window: float
    batch_idle: float
    fast_path_labels: tuple[str, ...]
    fast_path_confidence: float

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any]) -> SecmonSettings:
        """Read data and options (options fall back to defaults)."""
        options = entry.options
        return cls(
            address=parse_address(entry.data[CONF_ADDRESS]),
            camera_root=Path(entry.data[CONF_CAMERA_ROOT]),
            token=entry.data.get(CONF_TOKEN) or None,
            threshold=float(options.get(CONF_THRESHOLD, DEFAULT_THRESHOLD)),
            debounce=float(options.get(CONF_DEBOUNCE, DEFAULT_DEBOUNCE)),
            polling=bool(options.get(CONF_POLLING, DEFAULT_POLLING)),
            classes=tuple(options.get(CONF_CLASSES, DEFAULT_CLASSES)),
            clear_delay=float(options.get(CONF_CLEAR_DELAY, DEFAULT_CLEAR_DELAY)),
            queue_bound=int(options.get(CONF_QUEUE_BOUND, DEFAULT_QUEUE_BOUND)),
            batch_window=float(options.get(CONF_BATCH_WINDOW, DEFAULT_BATCH_WINDOW)),
            batch_idle=float(options.get(CONF_BATCH_IDLE, DEFAULT_BATCH_IDLE)),
            fast_path_labels=tuple(options.get(CONF_FAST_PATH_LABELS, DEFAULT_FAST_PATH_LABELS)),
            fast_path_confidence=float(
                options.get(CONF_FAST_PATH_CONFIDENCE, DEFAULT_FAST_PATH_CONFIDENCE)
            ),
        )

    def stream_config(self) -> secmon_pb2.StreamConfig:
        """What we push to the sidecar with Hello (options changes reload the entry: new Hello)."""
        return secmon_pb2.StreamConfig(
            detection_threshold=self.threshold,
            batching=secmon_pb2.BatchingConfig(
                window_seconds=self.batch_window,
                idle_seconds=self.batch_idle,
                fast_path_labels=list(self.fast_path_labels),
                fast_path_confidence=self.fast_path_confidence,
                # No fast-path labels chosen: no fast path (an empty list would mean the default).
                fast_path_disabled=not self.fast_path_labels,
                labels_of_interest=list(self.classes),
            ),
        )


def database_path(hass: HomeAssistant, entry_id: str) -> Path:
    """Where an entry's durable queue lives (HA's config directory)."""
    return Path(hass.config.path(DOMAIN, f"{entry_id}.db"))


class SecmonRuntime:
    """Everything one entry runs; `entry.runtime_data`."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry[SecmonRuntime]) -> None:
        """Wire the parts together (nothing runs yet)."""
        self.hass = hass
        self.entry = entry
        self.settings = SecmonSettings.from_entry(entry)
        self.hub = SecmonHub(hass, self.settings.classes)
        self.queue = DurableQueue(database_path(hass, entry.entry_id), self.settings.queue_bound)
        self.verdicts = VerdictStore(self.queue)
        self.stream = SidecarStream(
            hass,
            entry_id=entry.entry_id,
            address=self.settings.address,
            token=self.settings.token,
            queue=self.queue,
            handler=self,
            config=self.settings.stream_config(),
        )
        self.ingestor = FrameIngestor(
            hass,
            entry_id=entry.entry_id,
            root=self.settings.camera_root,
            hub=self.hub,
            queue=self.queue,
            on_enqueued=self.stream.wake,
        )
        self.watcher = FolderWatcher(
            hass,
            self.settings.camera_root,
            polling=self.settings.polling,
            debounce=self.settings.debounce,
            on_camera=self._async_on_camera,
            on_image=self.ingestor.submit,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Open the queue and restore cameras, their last frames and counters."""
        await self.hass.async_add_executor_job(self.queue.open)
        cameras = await self.hass.async_add_executor_job(self.queue.cameras)
        root = self.settings.camera_root
        for camera_id, (name, _last_seen) in cameras.items():
            self.hub.async_ensure_camera(camera_id, name, root / name)
        for stored in await self.hass.async_add_executor_job(self.queue.last_frames):
            result = secmon_pb2.FrameResult.FromString(stored.result)
            self.hub.async_apply_result(result, stored.image, stored.captured_at)
        for risk in await self.hass.async_add_executor_job(self.verdicts.camera_risks):
            if (camera := self.hub.cameras.get(risk.camera_id)) is not None:
                self.hub.async_set_risk(camera, risk.record, risk.snapshot, risk.snapshot_at)
        self.hub.counters.update(await self.hass.async_add_executor_job(self.queue.counters))
        self.hub.queue_depth = await self.hass.async_add_executor_job(self.queue.pending_count)

    async def async_start(self) -> None:
        """Start watching, catch up on files that landed while we were down, start streaming."""
        entry = self.entry
        self._tasks.append(
            entry.async_create_background_task(
                self.hass, self.ingestor.async_run(), f"{DOMAIN} ingest {entry.entry_id}"
            )
        )
        folders = await self.watcher.async_start()
        self._tasks.append(
            entry.async_create_background_task(
                self.hass, self._async_catch_up(folders), f"{DOMAIN} catch-up {entry.entry_id}"
            )
        )
        self._tasks.append(
            entry.async_create_background_task(
                self.hass, self.stream.async_run(), f"{DOMAIN} stream {entry.entry_id}"
            )
        )

    async def async_stop(self) -> None:
        """Stop every task, the watcher thread and timers, then close the queue. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.watcher.async_stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                LOGGER.exception("secmon task failed while stopping")
        self._tasks.clear()
        self.stream.async_shutdown()
        await self.hass.async_add_executor_job(self.queue.close)

    async def _async_catch_up(self, folders: list[Path]) -> None:
        """Take files newer than the newest one seen per camera (those that landed while down)."""
        known = await self.hass.async_add_executor_job(self.queue.cameras)
        baseline = await self.hass.async_add_executor_job(self.queue.baseline)
        found: list[tuple[float, Path]] = []
        for folder in folders:
            _name, last_seen = known.get(camera_id_for(folder.name), (folder.name, None))
            found.extend(
                await self.hass.async_add_executor_job(
                    scan_images, folder, last_seen if last_seen is not None else baseline
                )
            )
        found.sort()
        if found:
            LOGGER.info(
                "Catching up on %s image(s) that arrived while secmon was not running", len(found)
            )
        for _mtime, path in found:
            self.ingestor.submit(path)

    # -- watcher --------------------------------------------------------------------------------

    @callback
    def _async_on_camera(self, camera_id: str, name: str, folder: Path) -> None:
        self.hub.async_ensure_camera(camera_id, name, folder)

    # -- StreamHandler --------------------------------------------------------------------------

    @callback
    def async_on_connected(self, connected: bool, error: str | None) -> None:
        """Connectivity drives the sidecar sensor and detection entities' availability."""
        self.hub.async_set_connected(connected, error)

    @callback
    def async_on_status(self, status: secmon_pb2.SidecarStatus) -> None:
        """Keep the sidecar's status for sensors and diagnostics."""
        self.hub.async_set_status(status)

    async def async_on_result(self, result: secmon_pb2.FrameResult) -> None:
        """Store the result (the frame leaves the queue), then show it."""
        failed = result.HasField("error")
        frame = await self.hass.async_add_executor_job(
            lambda: self.queue.complete(result.frame_id, result.SerializeToString(), failed=failed)
        )
        depth = await self.hass.async_add_executor_job(self.queue.pending_count)
        self.hub.async_set_queue_depth(depth)
        if frame is None:
            LOGGER.debug("Result for frame %s already stored; ignored", result.frame_id)
            return
        if failed:
            LOGGER.warning(
                "The sidecar could not analyse %s: %s (%s)",
                frame.path,
                secmon_pb2.FrameErrorCode.Name(result.error.code),
                result.error.message,
            )
            self.hub.async_count("frames_failed")
            return
        self.hub.async_count("frames_processed")
        self.hub.async_apply_result(result, frame.image, frame.captured_at)

    async def async_on_verdict(self, verdict: secmon_pb2.Verdict) -> bool:
        """Store the verdict, then show it; True (acknowledge) once stored, also if stored before.

        False leaves it unacknowledged: the sidecar sends it again later.
        """
        if not verdict.verdict_id or not verdict.camera_id:
            LOGGER.warning("Ignoring a verdict without verdict or camera id")
            return False
        record = VerdictRecord.from_message(verdict)
        try:
            outcome = await self.hass.async_add_executor_job(self.verdicts.receive, record)
        except sqlite3.Error:
            LOGGER.exception(
                "Could not store verdict %s; the sidecar will send it again", verdict.verdict_id
            )
            return False
        if outcome is None:
            LOGGER.debug("Verdict %s already stored; acknowledging again", verdict.verdict_id)
            return True
        async_announce_verdict(self.hass, self.entry.entry_id, self.hub, record, outcome)
        return True


SecmonConfigEntry: TypeAlias = ConfigEntry[SecmonRuntime]
