"""Per camera: objects in the latest frame, its time. Per sidecar: latency, counts, queue depth."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SecmonCameraEntity, SecmonSidecarEntity
from .hub import CameraState, SecmonHub
from .runtime import SecmonConfigEntry

PARALLEL_UPDATES = 0

StateType: TypeAlias = int | float | datetime | None


@dataclass(frozen=True, kw_only=True)
class CameraSensorDescription(SensorEntityDescription):
    """A sensor of a camera."""

    value_fn: Callable[[CameraState], StateType]
    attributes_fn: Callable[[CameraState], Mapping[str, Any] | None] = lambda _camera: None
    # Detection sensors go unavailable while the sidecar is away.
    needs_sidecar: bool = True


@dataclass(frozen=True, kw_only=True)
class SidecarSensorDescription(SensorEntityDescription):
    """A sensor of the sidecar."""

    value_fn: Callable[[SecmonHub], StateType]


CAMERA_SENSORS: tuple[CameraSensorDescription, ...] = (
    CameraSensorDescription(
        key="objects",
        translation_key="objects",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda camera: camera.object_count if camera.frame_id else None,
        attributes_fn=lambda camera: dict(sorted(camera.label_counts.items())),
    ),
    CameraSensorDescription(
        key="last_frame",
        translation_key="last_frame",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda camera: camera.captured_at,
        needs_sidecar=False,
    ),
)

SIDECAR_SENSORS: tuple[SidecarSensorDescription, ...] = (
    SidecarSensorDescription(
        key="inference_latency",
        translation_key="inference_latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda hub: hub.sidecar.inference_ms,
    ),
    SidecarSensorDescription(
        key="frames_processed",
        translation_key="frames_processed",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda hub: hub.counters["frames_processed"],
    ),
    SidecarSensorDescription(
        key="queue_depth",
        translation_key="queue_depth",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda hub: hub.queue_depth,
    ),
    SidecarSensorDescription(
        key="frames_skipped",
        translation_key="frames_skipped",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda hub: hub.counters["frames_skipped"],
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Sidecar sensors now; camera sensors for every camera, also those found later."""
    async_add_entities(SidecarSensor(entry, d) for d in SIDECAR_SENSORS)

    @callback
    def add_camera(camera: CameraState) -> None:
        async_add_entities(CameraSensor(entry, camera, d) for d in CAMERA_SENSORS)

    for camera in list(entry.runtime_data.hub.cameras.values()):
        add_camera(camera)
    entry.async_on_unload(entry.runtime_data.hub.async_on_camera_added(add_camera))


class CameraSensor(SecmonCameraEntity, SensorEntity):
    """A sensor of a camera's latest frame."""

    entity_description: CameraSensorDescription

    def __init__(
        self, entry: SecmonConfigEntry, camera: CameraState, description: CameraSensorDescription
    ) -> None:
        """One sensor of one camera."""
        super().__init__(entry, camera, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Detection sensors follow the sidecar's connectivity."""
        return self.hub.sidecar.connected or not self.entity_description.needs_sidecar

    @property
    def native_value(self) -> StateType:
        """From the camera's state."""
        return self.entity_description.value_fn(self.camera)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Per-label counts for the objects sensor."""
        return self.entity_description.attributes_fn(self.camera)


class SidecarSensor(SecmonSidecarEntity, SensorEntity):
    """A sensor of the sidecar (and of our queue)."""

    entity_description: SidecarSensorDescription

    def __init__(self, entry: SecmonConfigEntry, description: SidecarSensorDescription) -> None:
        """One sensor of the sidecar."""
        super().__init__(entry, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType:
        """From the hub."""
        return self.entity_description.value_fn(self.hub)
