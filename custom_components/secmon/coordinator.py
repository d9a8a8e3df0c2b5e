"""The coordinator of one secmon entry (`entry.runtime_data`): its parts, its state, availability.

Where a frame goes: ingest/ (the watcher sees a settled image, the ingestor checks it) -> storage/
(the frame queue keeps it until its result is stored) -> link/ (the stream sends it to the sidecar
and receives results and verdicts) -> here -> the entities. A verdict goes storage/ (the verdict
store) -> verdicts/ (the announcement rule, carried out) -> the entities and the bus.

The coordinator pushes (there is nothing to poll): it holds what the entities show, per camera and
for the sidecar, and calls the listeners of what changed. It owns availability (entities that show
what the sidecar computes follow its connectivity), keeps the sidecar's device in step with the
status the sidecar reports, and raises and clears the repair issues about the sidecar and the queue.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import av
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HassJob,
    HomeAssistant,
    callback,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.util import dt as dt_util

from . import repairs
from .const import (
    ANIMAL_LABELS,
    DATABASE_CHECK_INTERVAL,
    DOMAIN,
    EVENT_TAMPERED,
    LOGGER,
    MAX_FRAME_BYTES,
    PERSON_LABELS,
    RETENTION_INTERVAL,
    SIDECAR_KEY,
    STALE_CAMERA_GRACE,
    STALE_CHECK_INTERVAL,
    UNREACHABLE_ISSUE_DELAY,
    VEHICLE_LABELS,
)
from .context.feedback_sync import feedback_counts, feedback_messages
from .context.home_state import home_state_message
from .entity import (
    camera_device_identifier,
    camera_unique_id,
    sidecar_device_identifier,
    sidecar_device_info,
)
from .ingest.imaging import DEFAULT_MAX_PIXELS, Box, render_detections
from .ingest.ingestor import FrameIngestor
from .ingest.watcher import FolderWatcher, camera_id_for, name_hash
from .link.convert import boxes_of, stream_config
from .link.proto import secmon_pb2
from .link.stream import SidecarStream
from .settings import SecmonSettings, database_path
from .storage.database import Database
from .storage.event_media import EventMedia
from .storage.frame_queue import FrameQueue
from .storage.retention import Retention, RetentionPolicy, RetentionReport
from .storage.verdict_store import VerdictStore
from .verdicts.alerts import AlertCenter, AlertFilters
from .verdicts.announce import async_announce_verdict
from .verdicts.records import VerdictRecord

CATEGORY_LABELS: dict[str, frozenset[str]] = {
    "person": PERSON_LABELS,
    "vehicle": VEHICLE_LABELS,
    "animal": ANIMAL_LABELS,
}

# Called with (event type = risk level, attributes) when a camera's security event is announced.
EventListener = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class CameraState:
    """What we know about one camera (one sub-folder of the camera root)."""

    camera_id: str
    name: str
    folder: Path
    frame_id: str | None = None
    captured_at: datetime | None = None
    boxes: list[Box] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    # Capture time (epoch seconds) of the newest frame with a detection, per occupancy category.
    last_detected: dict[str, float] = field(default_factory=dict)
    raw_image: bytes | None = None
    rendered: tuple[str, bytes] | None = None
    render_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The current verdict (risk sensors) and its snapshot with boxes drawn (image entity).
    risk: VerdictRecord | None = None
    snapshot: bytes | None = None
    snapshot_at: datetime | None = None
    # The latest current verdict with a scene caption (the description sensor).
    described: VerdictRecord | None = None
    # The owner's judgements of this camera's events, per verdict ("false_alarm", "confirmed").
    feedback_counts: dict[str, int] = field(default_factory=dict)
    # Capture time (epoch seconds) of the newest frame with a detection in each named zone.
    zone_last_seen: dict[str, float] = field(default_factory=dict)
    # The sidecar's tamper check of the newest frame: "none", "moved", "covered", "blurred",
    # "dark"; how far from the usual view (0..1); since when.
    tamper_kind: str = "none"
    tamper_score: float = 0.0
    tamper_since: datetime | None = None
    # The latest `secmon_tampered` event's data (diagnostics).
    last_tamper_event: dict[str, Any] | None = None

    @property
    def object_count(self) -> int:
        """Objects of interest in the latest frame."""
        return sum(self.label_counts.values())


@dataclass(slots=True)
class SidecarState:
    """The sidecar as seen from here."""

    connected: bool = False
    server_version: str | None = None
    status: secmon_pb2.SidecarStatus | None = None
    inference_ms: float | None = None
    connected_since: datetime | None = None
    disconnected_since: datetime | None = None
    last_error: str | None = None


def _present(last_seen: float | None, clear_delay: float) -> tuple[bool, float]:
    """Whether something last seen at `last_seen` counts as present now, and seconds until that
    changes (0: never)."""
    if last_seen is None:
        return False, 0.0
    remaining = last_seen + clear_delay - time.time()
    return (True, remaining) if remaining > 0 else (False, 0.0)


class SecmonCoordinator:
    """Everything one entry runs and shows."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry[SecmonCoordinator]) -> None:
        """Wire the parts together (nothing runs yet)."""
        self.hass = hass
        self.entry = entry
        self.settings = SecmonSettings.from_entry(entry)
        self.classes_of_interest = frozenset(self.settings.classes)
        self.cameras: dict[str, CameraState] = {}
        self.sidecar = SidecarState()
        self.counters: Counter[str] = Counter()
        self.queue_depth = 0
        self.alerts = AlertCenter(
            AlertFilters(
                labels=frozenset(self.settings.alert_labels),
                quiet_start=self.settings.quiet_start,
                quiet_end=self.settings.quiet_end,
            )
        )

        self.database = Database(database_path(hass, entry.entry_id))
        self.queue = FrameQueue(self.database, self.settings.queue_bound)
        self.verdicts = VerdictStore(
            self.database, self.queue, kept_days=self.settings.keep_events_days
        )
        self.media = EventMedia(self.database.path.with_suffix(""), self.queue)
        self.retention = Retention(
            self.database, self.media, self.settings.camera_root, hass.config.is_allowed_path
        )
        # Bytes the events' pictures and clips take (updated by each retention run).
        self.media_bytes: int | None = None
        self._cancel_retention: CALLBACK_TYPE | None = None
        self.stream = SidecarStream(
            hass,
            entry_id=entry.entry_id,
            address=self.settings.address,
            token=self.settings.token,
            queue=self.queue,
            handler=self,
            config=stream_config(self.settings),
        )
        self.ingestor = FrameIngestor(
            hass,
            root=self.settings.camera_root,
            coordinator=self,
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
            on_ignored=self._async_on_ignored,
            resolve_camera_id=self.camera_id_for,
            is_allowed=hass.config.is_allowed_path,
        )

        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._camera_added: list[Callable[[CameraState], None]] = []
        self._event_listeners: dict[str, list[EventListener]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        # Since when (monotonic) the sidecar is away; None while connected or before the first try.
        self._down_since: float | None = None
        self._unreachable_timer: CALLBACK_TYPE | None = None
        self._stale_check: CALLBACK_TYPE | None = None
        self._cancel_database_check: CALLBACK_TYPE | None = None
        self._cancel_home_tracking: CALLBACK_TYPE | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def async_load(self) -> None:
        """Open the database and restore cameras, their last frames, verdicts and counters."""
        await self.hass.async_add_executor_job(self.database.open)
        if (damaged := self.database.damaged) is not None:
            LOGGER.error(
                "The secmon database %s could not be read (%s); it was moved to %s and secmon"
                " starts with an empty database (%s pending frames lost)",
                self.database.path,
                damaged.error,
                damaged.moved_to,
                damaged.pending_frames if damaged.pending_frames is not None else "unknown",
            )
            repairs.async_create_database_damaged(
                self.hass,
                self.entry.entry_id,
                str(damaged.moved_to),
                damaged.error,
                damaged.pending_frames,
            )
        await self.hass.async_add_executor_job(self.queue.prune)
        cameras = await self.hass.async_add_executor_job(self.queue.cameras)
        missing = await self.hass.async_add_executor_job(self.queue.missing_cameras)
        root = self.settings.camera_root
        now = time.time()
        for camera_id, (name, _last_seen) in cameras.items():
            if now - missing.get(camera_id, now) >= STALE_CAMERA_GRACE:
                # Removed as stale before: no device, unless its folder comes back.
                self._async_remove_camera_device(camera_id)
                continue
            self.async_ensure_camera(camera_id, name, root / name)
        for stored in await self.hass.async_add_executor_job(self.queue.last_frames):
            result = secmon_pb2.FrameResult.FromString(stored.result)
            self.async_apply_result(result, stored.image, stored.captured_at, replay=True)
        for risk in await self.hass.async_add_executor_job(self.verdicts.camera_risks):
            if (camera := self.cameras.get(risk.camera_id)) is not None:
                self.async_set_risk(camera, risk.record, risk.snapshot, risk.snapshot_at)
        self.counters.update(await self.hass.async_add_executor_job(self.queue.counters))
        self.queue_depth = await self.hass.async_add_executor_job(self.queue.pending_count)
        await self.async_refresh_feedback_counts()

    async def async_start(self) -> None:
        """Start watching, catch up on files that landed while we were down, start streaming."""
        entry = self.entry
        self.stream.session_messages = self._async_feedback_messages
        if entities := self.settings.home_entities:
            self.stream.home_state = home_state_message(self.hass, self.settings)
            self._cancel_home_tracking = async_track_state_change_event(
                self.hass, list(entities), self._async_on_home_changed
            )
        self._tasks.append(
            entry.async_create_background_task(
                self.hass, self.ingestor.async_run(), f"{DOMAIN} ingest {entry.entry_id}"
            )
        )
        folders = await self.watcher.async_start()
        self._tasks.append(
            entry.async_create_background_task(
                self.hass,
                self.ingestor.async_catch_up(folders, self.watcher.async_check_later),
                f"{DOMAIN} catch-up {entry.entry_id}",
            )
        )
        self._tasks.append(
            entry.async_create_background_task(
                self.hass, self.stream.async_run(), f"{DOMAIN} stream {entry.entry_id}"
            )
        )
        self._tasks.append(
            entry.async_create_background_task(
                self.hass,
                self.async_check_camera_folders(),
                f"{DOMAIN} camera folders {entry.entry_id}",
            )
        )
        self._stale_check = async_track_time_interval(
            self.hass,
            self._async_on_stale_check,
            STALE_CHECK_INTERVAL,
            name=f"{DOMAIN} camera folders",
            cancel_on_shutdown=True,
        )
        self._cancel_database_check = async_track_time_interval(
            self.hass,
            self._async_check_database_now,
            timedelta(seconds=DATABASE_CHECK_INTERVAL),
            cancel_on_shutdown=True,
        )
        self._tasks.append(
            entry.async_create_background_task(
                self.hass,
                self._async_retention_now(dt_util.utcnow()),
                f"{DOMAIN} retention {entry.entry_id}",
            )
        )
        self._cancel_retention = async_track_time_interval(
            self.hass,
            self._async_retention_now,
            timedelta(seconds=RETENTION_INTERVAL),
            cancel_on_shutdown=True,
        )

    async def _async_retention_now(self, _now: datetime) -> None:
        await self.async_run_retention()

    async def async_run_retention(self, now: float | None = None) -> RetentionReport:
        """One retention run, in bounded steps in the executor (see storage/retention.py);
        updates the media size sensor and the disk cap's repair issue."""
        settings = self.settings
        policy = RetentionPolicy(
            keep_events_days=settings.keep_events_days,
            keep_clips_days=settings.keep_clips_days,
            cap_bytes=int(settings.media_cap_gb * 1e9),
            delete_uploads_days=settings.delete_uploads_days or None,
        )
        report = RetentionReport()
        at = time.time() if now is None else now
        try:
            while not await self.hass.async_add_executor_job(
                self.retention.step, policy, at, report
            ):
                if self._stopped:
                    break
        except (OSError, sqlite3.Error):
            LOGGER.exception("Retention run failed; it runs again in an hour")
            return report
        if report.events_removed or report.media_removed_by_cap or report.uploads_removed:
            LOGGER.info(
                "Retention removed %s event(s), %s clip(s), the media of %s event(s) over the"
                " disk cap and %s analysed upload(s)",
                report.events_removed,
                report.clips_removed,
                report.media_removed_by_cap,
                report.uploads_removed,
            )
        if report.removed_early:
            repairs.async_create_media_cap(
                self.hass,
                self.entry.entry_id,
                len(report.removed_early),
                settings.media_cap_gb,
                settings.keep_events_days,
            )
        else:
            repairs.async_clear_media_cap(self.hass, self.entry.entry_id)
        self.media_bytes = report.media_bytes
        self.async_notify(SIDECAR_KEY)
        return report

    async def _async_feedback_messages(self) -> list[secmon_pb2.ClientMessage]:
        return await self.hass.async_add_executor_job(feedback_messages, self.database)

    async def async_on_feedback(self, event_id: str) -> None:
        """The owner judged `event_id` (stored): tell the sidecar, update the counts."""
        messages = await self.hass.async_add_executor_job(
            feedback_messages, self.database, event_id
        )
        await self.stream.async_send(messages)
        await self.async_refresh_feedback_counts()

    async def async_refresh_feedback_counts(self) -> None:
        """Read the judgements per camera (risk level sensor attributes, diagnostics)."""
        counts = await self.hass.async_add_executor_job(feedback_counts, self.database)
        for camera_id, camera in self.cameras.items():
            if (found := counts.get(camera_id, {})) != camera.feedback_counts:
                camera.feedback_counts = found
                self.async_notify(camera_id)

    @callback
    def _async_on_home_changed(self, _event: Event[EventStateChangedData]) -> None:
        """A chosen alarm / presence / vacation entity changed: tell the sidecar."""
        if self._stopped:
            return
        self.entry.async_create_background_task(
            self.hass,
            self.stream.async_send_home_state(home_state_message(self.hass, self.settings)),
            f"{DOMAIN} home state {self.entry.entry_id}",
        )

    async def _async_check_database_now(self, _now: datetime) -> None:
        await self.async_check_database()

    async def async_check_database(self) -> bool:
        """Notice a database file deleted (or replaced) underneath us and write it back from the
        open connection; True if that happened."""
        try:
            restored = await self.hass.async_add_executor_job(self.database.restore_if_gone)
        except (OSError, sqlite3.Error):
            LOGGER.exception("Could not write back the secmon database %s", self.database.path)
            return False
        if restored:
            LOGGER.error(
                "The secmon database %s was deleted or replaced while running; written back"
                " from the open copy",
                self.database.path,
            )
            repairs.async_create_database_restored(
                self.hass, self.entry.entry_id, str(self.database.path)
            )
        return restored

    async def async_stop(self) -> None:
        """Stop every task, the watcher thread and timers, then close the database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._stale_check is not None:
            self._stale_check()
            self._stale_check = None
        if self._cancel_database_check is not None:
            self._cancel_database_check()
            self._cancel_database_check = None
        if self._cancel_retention is not None:
            self._cancel_retention()
            self._cancel_retention = None
        if self._cancel_home_tracking is not None:
            self._cancel_home_tracking()
            self._cancel_home_tracking = None
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
        self._cancel_unreachable_timer()
        repairs.async_clear_sidecar_unreachable(self.hass, self.entry.entry_id)
        await self.hass.async_add_executor_job(self.database.close)

    # -- subscriptions --------------------------------------------------------------------------

    @callback
    def async_add_listener(self, key: str, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` when camera `key` (or SIDECAR_KEY) changes; returns the unsubscriber."""
        self._listeners.setdefault(key, []).append(update)

        @callback
        def remove() -> None:
            self._listeners[key].remove(update)

        return remove

    @callback
    def async_add_event_listener(self, camera_id: str, fire: EventListener) -> CALLBACK_TYPE:
        """Call `fire` when one of the camera's security events is announced; returns the
        unsubscriber."""
        self._event_listeners.setdefault(camera_id, []).append(fire)

        @callback
        def remove() -> None:
            self._event_listeners[camera_id].remove(fire)

        return remove

    @callback
    def async_on_camera_added(self, add: Callable[[CameraState], None]) -> CALLBACK_TYPE:
        """Call `add` for every camera discovered from now on (platforms add their entities)."""
        self._camera_added.append(add)
        return lambda: self._camera_added.remove(add)

    @callback
    def async_notify(self, key: str) -> None:
        """Tell the listeners of `key` that its state changed."""
        for update in list(self._listeners.get(key, ())):
            update()

    @callback
    def async_notify_all(self) -> None:
        """Tell every listener (connectivity changed: availability follows it)."""
        for key in list(self._listeners):
            self.async_notify(key)

    # -- cameras --------------------------------------------------------------------------------

    @callback
    def camera_id_for(self, folder_name: str) -> str:
        """The camera id of a folder: its slug, unless another folder already holds that slug
        (`Front Door` and `FRONT-DOOR`); then the slug with a hash of the name. The first folder
        seen keeps the plain slug (cameras are restored before the watcher starts), so ids stay
        stable across restarts and two folders never share one camera."""
        for camera in self.cameras.values():
            if camera.name == folder_name:
                return camera.camera_id
        camera_id = camera_id_for(folder_name)
        if camera_id in self.cameras:
            camera_id = f"{camera_id}_{name_hash(folder_name)}"
        return camera_id

    @callback
    def _async_on_camera(self, camera_id: str, name: str, folder: Path) -> None:
        self.async_ensure_camera(camera_id, name, folder)

    @callback
    def _async_on_ignored(self, path: Path) -> None:
        self.async_count("files_ignored")
        self.hass.async_add_executor_job(self.queue.bump, "files_ignored", 1)

    @callback
    def async_ensure_camera(self, camera_id: str, name: str, folder: Path) -> CameraState:
        """Return the camera, creating it (and announcing it to the platforms) if new."""
        camera = self.cameras.get(camera_id)
        if camera is None:
            camera = CameraState(camera_id=camera_id, name=name, folder=folder)
            self.cameras[camera_id] = camera
            LOGGER.debug("New camera %s (%s)", camera_id, name)
            for add in list(self._camera_added):
                add(camera)
        return camera

    @callback
    def async_apply_result(
        self,
        result: secmon_pb2.FrameResult,
        image: bytes,
        captured_at: float,
        *,
        replay: bool = False,
    ) -> None:
        """Make a frame's detections the camera's state (if it is the newest frame). A stored
        result replayed at start-up restores the state without announcing anything."""
        camera = self.cameras.get(result.camera_id)
        if camera is None:
            return
        wanted = [
            d
            for d in result.detections
            if not self.classes_of_interest or d.label in self.classes_of_interest
        ]
        for category, labels in CATEGORY_LABELS.items():
            if any(d.label in labels for d in wanted):
                camera.last_detected[category] = max(
                    camera.last_detected.get(category, 0.0), captured_at
                )
        for hit in result.zones:
            in_zone = [
                result.detections[i].label
                for i in hit.detections
                if 0 <= i < len(result.detections)
            ]
            if any(
                not self.classes_of_interest or label in self.classes_of_interest
                for label in in_zone
            ):
                camera.zone_last_seen[hit.zone] = max(
                    camera.zone_last_seen.get(hit.zone, 0.0), captured_at
                )
        when = dt_util.utc_from_timestamp(captured_at)
        if camera.captured_at is None or when >= camera.captured_at:
            camera.frame_id = result.frame_id
            camera.captured_at = when
            camera.label_counts = dict(Counter(d.label for d in wanted))
            camera.boxes = boxes_of(wanted)
            camera.raw_image = image
            camera.rendered = None
            if result.HasField("tamper"):
                self._async_set_tamper(camera, result.tamper, announce=not replay)
        self.async_notify(camera.camera_id)
        if result.inference_ms:
            self.sidecar.inference_ms = result.inference_ms
            self.async_notify(SIDECAR_KEY)

    @callback
    def _async_set_tamper(
        self, camera: CameraState, tamper: secmon_pb2.CameraTamper, *, announce: bool
    ) -> None:
        was_on = camera.tamper_kind != "none"
        camera.tamper_kind = tamper.kind or "none"
        camera.tamper_score = round(tamper.score, 3)
        camera.tamper_since = (
            dt_util.as_utc(tamper.since.ToDatetime(tzinfo=dt_util.UTC))
            if tamper.HasField("since")
            else None
        )
        if was_on or camera.tamper_kind == "none":
            return
        data: dict[str, Any] = {
            "camera_id": camera.camera_id,
            "camera_name": camera.name,
            "kind": camera.tamper_kind,
            "score": camera.tamper_score,
            "since": camera.tamper_since.isoformat() if camera.tamper_since else None,
            "entity_id": er.async_get(self.hass).async_get_entity_id(
                "binary_sensor",
                DOMAIN,
                camera_unique_id(self.entry.entry_id, camera.camera_id, "tampered"),
            ),
        }
        camera.last_tamper_event = data
        if announce:
            LOGGER.warning(
                "The view of camera %s looks %s (score %.2f)",
                camera.name,
                camera.tamper_kind,
                camera.tamper_score,
            )
            self.hass.bus.async_fire(EVENT_TAMPERED, data)

    @callback
    def async_set_risk(
        self,
        camera: CameraState,
        record: VerdictRecord,
        snapshot: bytes | None,
        snapshot_at: float | None,
    ) -> None:
        """Make a verdict the camera's current one (risk sensors, snapshot)."""
        camera.risk = record
        if record.message.caption.strip():
            camera.described = record
        camera.snapshot = snapshot
        camera.snapshot_at = (
            dt_util.utc_from_timestamp(snapshot_at) if snapshot_at is not None else None
        )
        self.async_notify(camera.camera_id)

    @callback
    def async_fire_event(self, camera_id: str, level: str, attributes: dict[str, Any]) -> None:
        """Announce a security event to the camera's event entity."""
        for fire in list(self._event_listeners.get(camera_id, ())):
            fire(level, attributes)

    async def async_camera_image(self, camera_id: str, *, with_zones: bool = True) -> bytes | None:
        """The camera's latest frame with its boxes (and its zones outlined), rendered in the
        executor once per frame; without zones (the zone editor's picture) each time asked."""
        camera = self.cameras.get(camera_id)
        if camera is None:
            return None
        async with camera.render_lock:
            if camera.raw_image is None or camera.frame_id is None:
                return None
            if with_zones and camera.rendered is not None and camera.rendered[0] == camera.frame_id:
                return camera.rendered[1]
            frame_id, raw, boxes = camera.frame_id, camera.raw_image, list(camera.boxes)
            zones = [
                (str(z["name"]), z["points"])
                for z in (self.settings.camera_zones.get(camera_id, []) if with_zones else [])
            ]
            try:
                jpeg = await self.hass.async_add_executor_job(render_detections, raw, boxes, zones)
            except OSError:
                LOGGER.warning("Could not render frame %s of camera %s", frame_id, camera_id)
                return None
            if with_zones:
                camera.rendered = (frame_id, jpeg)
            return jpeg

    @staticmethod
    def zone_occupied(camera: CameraState, zone: str, clear_delay: float) -> tuple[bool, float]:
        """Whether something of interest stands in `zone` now, and seconds until that changes."""
        return _present(camera.zone_last_seen.get(zone), clear_delay)

    @staticmethod
    def occupied(camera: CameraState, category: str, clear_delay: float) -> tuple[bool, float]:
        """Whether `category` counts as present now, and seconds until that changes (0: never)."""
        return _present(camera.last_detected.get(category), clear_delay)

    async def async_check_camera_folders(self) -> None:
        """Note camera folders that are gone; remove the devices of those gone longer than
        STALE_CAMERA_GRACE (their frames, results and verdicts stay in the database)."""
        cameras = list(self.cameras.values())
        present = await self.hass.async_add_executor_job(
            lambda: {camera.camera_id: camera.folder.is_dir() for camera in cameras}
        )
        missing = await self.hass.async_add_executor_job(self.queue.missing_cameras)
        now = time.time()
        for camera in cameras:
            since = missing.get(camera.camera_id)
            if present[camera.camera_id]:
                if since is not None:
                    await self.hass.async_add_executor_job(
                        self.queue.set_missing, camera.camera_id, camera.name, None
                    )
            elif since is None:
                LOGGER.info("The folder of camera %s is gone", camera.name)
                await self.hass.async_add_executor_job(
                    self.queue.set_missing, camera.camera_id, camera.name, now
                )
            elif now - since >= STALE_CAMERA_GRACE:
                LOGGER.info(
                    "The folder of camera %s has been gone for %.0f days; removing its device",
                    camera.name,
                    (now - since) / 86400,
                )
                self.async_forget_camera(camera.camera_id)

    async def async_remove_camera(self, camera_id: str) -> bool:
        """The user removes a camera's device: allowed once its folder is gone (else it would
        come straight back). Its history stays in the database."""
        camera = self.cameras.get(camera_id)
        if camera is not None:
            if await self.hass.async_add_executor_job(camera.folder.is_dir):
                return False
            await self.hass.async_add_executor_job(
                self.queue.set_missing, camera_id, camera.name, 0.0
            )
            del self.cameras[camera_id]
        return True

    @callback
    def async_forget_camera(self, camera_id: str) -> None:
        """Drop a camera's state and its device (with its entities)."""
        self.cameras.pop(camera_id, None)
        self._async_remove_camera_device(camera_id)

    @callback
    def _async_remove_camera_device(self, camera_id: str) -> None:
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(
            identifiers={camera_device_identifier(self.entry.entry_id, camera_id)}
        )
        if device is not None:
            registry.async_update_device(device.id, remove_config_entry_id=self.entry.entry_id)

    async def _async_on_stale_check(self, _now: datetime) -> None:
        await self.async_check_camera_folders()

    # -- sidecar and queue ----------------------------------------------------------------------

    @property
    def max_frame_bytes(self) -> int:
        """The largest image we send: the sidecar's limit where its status gives one, never more
        than fits in one stream message."""
        limit = MAX_FRAME_BYTES
        status = self.sidecar.status
        if status is not None and (advertised := int(getattr(status, "max_frame_bytes", 0))) > 0:
            limit = min(limit, advertised)
        return limit

    @property
    def files_refused(self) -> int:
        """Files and frames refused as hostile or unusable: not regular files, outside the
        allow-list, too large, or set aside after breaking sessions (details in diagnostics)."""
        return sum(
            count
            for name, count in self.counters.items()
            if name.startswith("files_refused_") or name in {"frames_set_aside", "frames_too_large"}
        )

    @property
    def sidecar_storage_error(self) -> str:
        """Why the sidecar cannot write its state (disk full, read-only), empty when it can."""
        status = self.sidecar.status
        return str(getattr(status, "storage_error", "")) if status is not None else ""

    @property
    def max_pixels(self) -> int:
        """The most pixels an image may have: the sidecar's limit where its status gives one."""
        status = self.sidecar.status
        if status is not None and (advertised := int(getattr(status, "max_pixels", 0))) > 0:
            return advertised
        return DEFAULT_MAX_PIXELS

    @callback
    def async_set_queue_depth(self, depth: int) -> None:
        """Pending frames in the queue; a drained queue clears the overflow issue."""
        if depth == self.queue_depth:
            return
        self.queue_depth = depth
        if depth == 0:
            repairs.async_clear_queue_overflow(self.hass, self.entry.entry_id)
        self.async_notify(SIDECAR_KEY)

    @callback
    def async_count(self, name: str, by: int = 1) -> None:
        """Bump an in-memory mirror of a persistent counter."""
        self.counters[name] += by
        self.async_notify(SIDECAR_KEY)

    @callback
    def async_frames_dropped(self, dropped: int) -> None:
        """The full queue dropped its oldest unsent frames: count, warn, raise the issue."""
        self.async_count("frames_dropped", dropped)
        total = self.counters["frames_dropped"]
        LOGGER.warning(
            "The frame queue is full (%s frames): dropped the %s oldest unsent frame(s), %s in all."
            " Is the sidecar keeping up?",
            self.queue.max_frames,
            dropped,
            total,
        )
        repairs.async_create_queue_overflow(
            self.hass, self.entry.entry_id, total, self.queue.max_frames
        )

    # -- StreamHandler --------------------------------------------------------------------------

    @callback
    def async_on_connected(self, connected: bool, error: str | None) -> None:
        """A session came up or went away (called after every failed attempt, too)."""
        address = self.settings.address.target
        if connected:
            if self._down_since is not None:
                LOGGER.info(
                    "The secmon sidecar at %s is reachable again (after %.0f s)",
                    address,
                    time.monotonic() - self._down_since,
                )
            self._down_since = None
            self._cancel_unreachable_timer()
            repairs.async_clear_sidecar_unreachable(self.hass, self.entry.entry_id)
        elif self._down_since is None:
            self._down_since = time.monotonic()
            LOGGER.warning(
                "The secmon sidecar at %s is unreachable (%s);"
                " frames are kept and sent when it is back",
                address,
                error,
            )
            self._unreachable_timer = async_call_later(
                self.hass,
                UNREACHABLE_ISSUE_DELAY,
                HassJob(self._async_raise_unreachable, cancel_on_shutdown=True),
            )
        if connected == self.sidecar.connected:
            return
        self.sidecar.connected = connected
        now = dt_util.utcnow()
        if connected:
            self.sidecar.connected_since = now
            self.sidecar.disconnected_since = None
            self.sidecar.last_error = None
        else:
            self.sidecar.disconnected_since = now
            self.sidecar.last_error = error
        self.async_notify_all()

    @callback
    def async_on_status(self, status: secmon_pb2.SidecarStatus) -> None:
        """Keep the sidecar's latest self-reported status; its device follows it."""
        before = self.sidecar_storage_error
        self.sidecar.status = status
        self.stream.max_frame_bytes = self.max_frame_bytes
        if (now_error := self.sidecar_storage_error) != before:
            if now_error:
                LOGGER.warning(
                    "The secmon sidecar cannot write its state (%s); frames stay queued here"
                    " until it can",
                    now_error,
                )
            else:
                LOGGER.info("The secmon sidecar can write its state again")
        if status.server_version:
            self.sidecar.server_version = status.server_version
        self._async_update_sidecar_device(status)
        if status.random_models:
            repairs.async_create_random_models(
                self.hass, self.entry.entry_id, list(status.random_models)
            )
        else:
            repairs.async_clear_random_models(self.hass, self.entry.entry_id)
        self.async_notify(SIDECAR_KEY)

    @callback
    def async_on_token_rejected(self) -> None:
        """Ask the user for the token the sidecar accepts (one reauth flow at a time)."""
        self.entry.async_start_reauth(self.hass)

    async def async_on_result(
        self, result: secmon_pb2.FrameResult, *, set_aside: bool = False
    ) -> None:
        """Store the result (the frame leaves the queue), then show it."""
        failed = result.HasField("error")
        frame = await self.hass.async_add_executor_job(
            lambda: self.queue.complete(result.frame_id, result.SerializeToString(), failed=failed)
        )
        depth = await self.hass.async_add_executor_job(self.queue.pending_count)
        self.async_set_queue_depth(depth)
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
            self.async_count("frames_failed")
            if set_aside:
                await self.hass.async_add_executor_job(self.queue.bump, "frames_set_aside", 1)
                self.async_count("frames_set_aside")
            elif result.error.code == secmon_pb2.FRAME_ERROR_CODE_TOO_LARGE:
                await self.hass.async_add_executor_job(self.queue.bump, "frames_too_large", 1)
                self.async_count("frames_too_large")
            return
        self.async_count("frames_processed")
        self.async_apply_result(result, frame.image, frame.captured_at)

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
        self.async_count("verdicts_received")
        if record.fallback:
            self.async_count("fallback_verdicts")
        clips = await self.hass.async_add_executor_job(self.queue.clips_of, list(verdict.frame_ids))
        try:
            pictures = await self.hass.async_add_executor_job(self.media.store_pictures, record)
        except OSError:
            LOGGER.exception("Could not store the pictures of event %s", record.event_id)
            pictures = False
        clip = False
        if not record.fast_path:
            # The batch closed: the event's clip of its frames.
            try:
                clip = await self.hass.async_add_executor_job(self.media.store_event_clip, record)
            except (OSError, av.FFmpegError):
                LOGGER.exception("Could not make the clip of event %s", record.event_id)
        async_announce_verdict(
            self, record, outcome, self._relative_to_root(clips), thumbnail=pictures, clip=clip
        )
        return True

    # -- internals ------------------------------------------------------------------------------

    def _relative_to_root(self, paths: list[str]) -> list[str]:
        """Paths as shown to users: relative to the camera root ("Front Door/alarm.mp4")."""
        root = self.settings.camera_root
        shown = []
        for path in paths:
            try:
                shown.append(Path(path).relative_to(root).as_posix())
            except ValueError:
                shown.append(Path(path).name)
        return shown

    @callback
    def _async_update_sidecar_device(self, status: secmon_pb2.SidecarStatus) -> None:
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(
            identifiers={sidecar_device_identifier(self.entry.entry_id)}
        )
        if device is None:
            return
        info = sidecar_device_info(self.entry.entry_id, status)
        model, sw_version = info.get("model"), info.get("sw_version")
        if (model is not None and model != device.model) or (
            sw_version is not None and sw_version != device.sw_version
        ):
            registry.async_update_device(
                device.id,
                model=model if model is not None else device.model,
                sw_version=sw_version if sw_version is not None else device.sw_version,
            )

    @callback
    def _cancel_unreachable_timer(self) -> None:
        if self._unreachable_timer is not None:
            self._unreachable_timer()
            self._unreachable_timer = None

    @callback
    def _async_raise_unreachable(self, _now: object) -> None:
        self._unreachable_timer = None
        repairs.async_create_sidecar_unreachable(
            self.hass, self.entry.entry_id, self.settings.address.target
        )


SecmonConfigEntry: TypeAlias = ConfigEntry[SecmonCoordinator]
