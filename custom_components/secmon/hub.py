"""In-memory state of one secmon entry and the fan-out of changes to its entities.

The stream and the watcher write here; entities read from here and subscribe to changes. This is
the place results and verdicts become HA-visible state.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from .const import ANIMAL_LABELS, LOGGER, PERSON_LABELS, VEHICLE_LABELS
from .ingest.imaging import Box, render_detections
from .link.proto import secmon_pb2
from .verdicts.records import VerdictRecord

SIDECAR_KEY = "__sidecar__"

CATEGORY_LABELS: dict[str, frozenset[str]] = {
    "person": PERSON_LABELS,
    "vehicle": VEHICLE_LABELS,
    "animal": ANIMAL_LABELS,
}


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


# Called with (event type = risk level, attributes) when a camera's security event is announced.
EventListener = Callable[[str, dict[str, Any]], None]


class SecmonHub:
    """State of one config entry, with listeners per camera and for the sidecar."""

    def __init__(self, hass: HomeAssistant, classes_of_interest: Iterable[str]) -> None:
        """Create an empty hub."""
        self.hass = hass
        self.classes_of_interest = frozenset(classes_of_interest)
        self.cameras: dict[str, CameraState] = {}
        self.sidecar = SidecarState()
        self.counters: Counter[str] = Counter()
        self.queue_depth = 0
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._camera_added: list[Callable[[CameraState], None]] = []
        self._event_listeners: dict[str, list[EventListener]] = {}

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
        """Tell every listener (e.g. connectivity changed)."""
        for key in list(self._listeners):
            self.async_notify(key)

    # -- cameras --------------------------------------------------------------------------------

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
        self, result: secmon_pb2.FrameResult, image: bytes, captured_at: float
    ) -> None:
        """Make a frame's detections the camera's state (if it is the newest frame)."""
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
        when = dt_util.utc_from_timestamp(captured_at)
        if camera.captured_at is None or when >= camera.captured_at:
            camera.frame_id = result.frame_id
            camera.captured_at = when
            camera.label_counts = dict(Counter(d.label for d in wanted))
            camera.boxes = [
                Box(
                    label=d.label,
                    confidence=d.confidence,
                    x_min=d.box.x_min,
                    y_min=d.box.y_min,
                    x_max=d.box.x_max,
                    y_max=d.box.y_max,
                )
                for d in wanted
            ]
            camera.raw_image = image
            camera.rendered = None
        self.async_notify(camera.camera_id)
        if result.inference_ms:
            self.sidecar.inference_ms = result.inference_ms
            self.async_notify(SIDECAR_KEY)

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

    async def async_camera_image(self, camera_id: str) -> bytes | None:
        """The camera's latest frame with its boxes, rendered in the executor once per frame."""
        camera = self.cameras.get(camera_id)
        if camera is None:
            return None
        async with camera.render_lock:
            if camera.raw_image is None or camera.frame_id is None:
                return None
            if camera.rendered is not None and camera.rendered[0] == camera.frame_id:
                return camera.rendered[1]
            frame_id, raw, boxes = camera.frame_id, camera.raw_image, list(camera.boxes)
            try:
                jpeg = await self.hass.async_add_executor_job(render_detections, raw, boxes)
            except OSError:
                LOGGER.warning("Could not render frame %s of camera %s", frame_id, camera_id)
                return None
            camera.rendered = (frame_id, jpeg)
            return jpeg

    @staticmethod
    def occupied(camera: CameraState, category: str, clear_delay: float) -> tuple[bool, float]:
        """Whether `category` counts as present now, and seconds until that changes (0: never)."""
        last = camera.last_detected.get(category)
        if last is None:
            return False, 0.0
        remaining = last + clear_delay - time.time()
        return (True, remaining) if remaining > 0 else (False, 0.0)

    # -- sidecar --------------------------------------------------------------------------------

    @callback
    def async_set_connected(self, connected: bool, error: str | None = None) -> None:
        """Record connectivity changes and refresh every entity (availability follows it)."""
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
    def async_set_status(self, status: secmon_pb2.SidecarStatus) -> None:
        """Keep the sidecar's latest self-reported status."""
        self.sidecar.status = status
        if status.server_version:
            self.sidecar.server_version = status.server_version
        self.async_notify(SIDECAR_KEY)

    @callback
    def async_set_queue_depth(self, depth: int) -> None:
        """Pending frames in the durable queue."""
        if depth != self.queue_depth:
            self.queue_depth = depth
            self.async_notify(SIDECAR_KEY)

    @callback
    def async_count(self, name: str, by: int = 1) -> None:
        """Bump an in-memory mirror of a persistent counter."""
        self.counters[name] += by
        self.async_notify(SIDECAR_KEY)
