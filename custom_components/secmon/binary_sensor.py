"""Occupancy per camera (person, vehicle, animal) and per named zone, and the sidecar's
connectivity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_call_later
from homeassistant.util import slugify

from .const import TAMPER_KINDS
from .coordinator import CameraState, SecmonConfigEntry, SecmonCoordinator
from .entity import SecmonCameraEntity, SecmonSidecarEntity, async_add_camera_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class OccupancyDescription(BinarySensorEntityDescription):
    """An occupancy sensor for one group of labels."""

    category: str


@dataclass(frozen=True, kw_only=True)
class SidecarBinaryDescription(BinarySensorEntityDescription):
    """A sidecar binary sensor."""

    is_on_fn: Callable[[SecmonCoordinator], bool]
    # Shows what the sidecar reports: unavailable while it is away.
    needs_sidecar: bool = False


OCCUPANCY_SENSORS: tuple[OccupancyDescription, ...] = (
    OccupancyDescription(
        key="person",
        translation_key="person",
        device_class=BinarySensorDeviceClass.OCCUPANCY,
        category="person",
    ),
    OccupancyDescription(
        key="vehicle",
        translation_key="vehicle",
        device_class=BinarySensorDeviceClass.OCCUPANCY,
        category="vehicle",
    ),
    OccupancyDescription(
        key="animal",
        translation_key="animal",
        device_class=BinarySensorDeviceClass.OCCUPANCY,
        category="animal",
    ),
)

SIDECAR_SENSORS: tuple[SidecarBinaryDescription, ...] = (
    SidecarBinaryDescription(
        key="connected",
        translation_key="connected",
        # Not diagnostic: the dashboard shows when the sidecar is down.
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        is_on_fn=lambda coordinator: coordinator.sidecar.connected,
    ),
    SidecarBinaryDescription(
        key="storage_problem",
        translation_key="storage_problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda coordinator: bool(coordinator.sidecar_storage_error),
        needs_sidecar=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Sidecar sensors now; occupancy sensors for every camera, also those found later."""
    async_add_entities(SidecarBinarySensor(entry, d) for d in SIDECAR_SENSORS)

    async_add_camera_entities(
        entry,
        async_add_entities,
        lambda camera: [
            *(OccupancySensor(entry, camera, d) for d in OCCUPANCY_SENSORS),
            TamperedSensor(entry, camera),
            *(
                ZoneOccupancySensor(entry, camera, str(zone["name"]))
                for zone in entry.runtime_data.settings.camera_zones.get(camera.camera_id, [])
            ),
        ],
    )


class OccupancySensor(SecmonCameraEntity, BinarySensorEntity):
    """On while a kind of object is seen, off `clear delay` seconds after it was last seen."""

    entity_description: OccupancyDescription
    _needs_sidecar = True

    def __init__(
        self, entry: SecmonConfigEntry, camera: CameraState, description: OccupancyDescription
    ) -> None:
        """One category of one camera."""
        super().__init__(entry.runtime_data, camera, description.key)
        self.entity_description = description
        self._clear_timer: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the coordinator and make sure no clear timer outlives us."""
        await super().async_added_to_hass()
        self.async_on_remove(self._cancel_timer)
        self._update_state()

    @callback
    def _cancel_timer(self) -> None:
        if self._clear_timer is not None:
            self._clear_timer()
            self._clear_timer = None

    def _occupied(self) -> tuple[bool, float]:
        return self.coordinator.occupied(
            self.camera,
            self.entity_description.category,
            self.coordinator.settings.clear_delay,
        )

    @callback
    def _update_state(self) -> None:
        self._cancel_timer()
        on, remaining = self._occupied()
        self._attr_is_on = on
        if on:
            self._clear_timer = async_call_later(
                self.hass, remaining, HassJob(self._async_clear, cancel_on_shutdown=True)
            )

    @callback
    def _async_clear(self, _now: object) -> None:
        self._clear_timer = None
        self._update_state()
        self.async_write_ha_state()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._update_state()
        self.async_write_ha_state()


class ZoneOccupancySensor(OccupancySensor):
    """On while something of interest stands in one of the owner's zones (by the foot point of
    its box), off `clear delay` seconds after."""

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState, zone: str) -> None:
        """One named zone of one camera."""
        super().__init__(
            entry,
            camera,
            OccupancyDescription(
                key=f"zone_{slugify(zone)}",
                translation_key="zone_occupancy",
                translation_placeholders={"zone": zone},
                device_class=BinarySensorDeviceClass.OCCUPANCY,
                category="zone",
            ),
        )
        self.zone = zone

    def _occupied(self) -> tuple[bool, float]:
        return self.coordinator.zone_occupied(
            self.camera, self.zone, self.coordinator.settings.clear_delay
        )


TAMPERED = BinarySensorEntityDescription(
    key="tampered",
    translation_key="tampered",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


class TamperedSensor(SecmonCameraEntity, BinarySensorEntity):
    """On while the sidecar finds the camera's view moved, covered, blurred or dark (its newest
    frame's tamper check; restored from that stored result after a restart)."""

    entity_description = TAMPERED

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The tamper state of one camera."""
        super().__init__(entry.runtime_data, camera, TAMPERED.key)

    @property
    def is_on(self) -> bool:
        """From the newest frame's result."""
        return self.camera.tamper_kind in TAMPER_KINDS and self.camera.tamper_kind != "none"

    @property
    def extra_state_attributes(self) -> dict[str, str | float | None]:
        """What the view looks like, how far from usual (0..1), and since when."""
        camera = self.camera
        return {
            "kind": camera.tamper_kind if camera.tamper_kind in TAMPER_KINDS else "none",
            "score": camera.tamper_score,
            "since": camera.tamper_since.isoformat() if camera.tamper_since else None,
        }


class SidecarBinarySensor(SecmonSidecarEntity, BinarySensorEntity):
    """The sidecar's connectivity."""

    entity_description: SidecarBinaryDescription

    def __init__(self, entry: SecmonConfigEntry, description: SidecarBinaryDescription) -> None:
        """One sensor of the sidecar."""
        super().__init__(entry.runtime_data, description.key)
        self.entity_description = description
        self._needs_sidecar = description.needs_sidecar

    @property
    def is_on(self) -> bool:
        """From the coordinator."""
        return self.entity_description.is_on_fn(self.coordinator)
