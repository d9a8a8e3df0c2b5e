"""Base entities: one device per camera folder, one for the sidecar."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .verdicts.announce import camera_device_identifier
from .const import DOMAIN
from .hub import SIDECAR_KEY, CameraState, SecmonHub
from .runtime import SecmonConfigEntry


@callback
def async_add_camera_entities(
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[CameraState], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every camera now and for every camera folder found later."""

    @callback
    def add_camera(camera: CameraState) -> None:
        async_add_entities(entities_for(camera))

    for camera in list(entry.runtime_data.hub.cameras.values()):
        add_camera(camera)
    entry.async_on_unload(entry.runtime_data.hub.async_on_camera_added(add_camera))


def sidecar_device_info(entry: SecmonConfigEntry) -> DeviceInfo:
    """The sidecar's device."""
    status = entry.runtime_data.hub.sidecar.status
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name="Secmon sidecar",
        manufacturer="secmon",
        model=status.detector_model if status is not None and status.detector_model else "Sidecar",
        sw_version=entry.runtime_data.hub.sidecar.server_version,
        configuration_url=None,
    )


class SecmonEntity(Entity):
    """Pushed state from the hub; no polling."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: SecmonConfigEntry, key: str) -> None:
        """Subscribe to `key` (a camera id or SIDECAR_KEY) in the hub."""
        self.entry = entry
        self.hub: SecmonHub = entry.runtime_data.hub
        self._hub_key = key

    async def async_added_to_hass(self) -> None:
        """Follow the hub."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.async_add_listener(self._hub_key, self._handle_hub_update))

    def _handle_hub_update(self) -> None:
        self.async_write_ha_state()


class SecmonCameraEntity(SecmonEntity):
    """An entity of a camera's device."""

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState, key: str) -> None:
        """`key` names the entity within the camera (unique id suffix)."""
        super().__init__(entry, camera.camera_id)
        self.camera = camera
        self._attr_unique_id = f"{entry.entry_id}_{camera.camera_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={camera_device_identifier(entry.entry_id, camera.camera_id)},
            name=camera.name,
            manufacturer="secmon",
            model="Camera folder",
            via_device=(DOMAIN, entry.entry_id),
        )


class SecmonSidecarEntity(SecmonEntity):
    """An entity of the sidecar's device."""

    def __init__(self, entry: SecmonConfigEntry, key: str) -> None:
        """`key` names the entity (unique id suffix)."""
        super().__init__(entry, SIDECAR_KEY)
        self._attr_unique_id = f"{entry.entry_id}_sidecar_{key}"
        self._attr_device_info = sidecar_device_info(entry)
