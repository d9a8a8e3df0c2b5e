"""Base entities and the one place that spells unique ids and devices: one device per camera
folder, one for the sidecar (the cameras' via_device)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, SIDECAR_KEY

if TYPE_CHECKING:
    from .coordinator import CameraState, SecmonConfigEntry, SecmonCoordinator
    from .link.proto import secmon_pb2

MANUFACTURER = "secmon"


def camera_device_identifier(entry_id: str, camera_id: str) -> tuple[str, str]:
    """The device registry identifier of a camera's device."""
    return (DOMAIN, f"{entry_id}_{camera_id}")


def sidecar_device_identifier(entry_id: str) -> tuple[str, str]:
    """The device registry identifier of the entry's sidecar."""
    return (DOMAIN, entry_id)


def camera_unique_id(entry_id: str, camera_id: str, key: str) -> str:
    """The unique id of a camera's entity `key`."""
    return f"{entry_id}_{camera_id}_{key}"


def sidecar_unique_id(entry_id: str, key: str) -> str:
    """The unique id of the sidecar's entity `key`."""
    return f"{entry_id}_sidecar_{key}"


def camera_device_info(entry_id: str, camera_id: str, name: str) -> DeviceInfo:
    """A camera folder's device."""
    return DeviceInfo(
        identifiers={camera_device_identifier(entry_id, camera_id)},
        name=name,
        manufacturer=MANUFACTURER,
        model="Camera folder",
        via_device=sidecar_device_identifier(entry_id),
    )


def sidecar_device_info(
    entry_id: str, status: secmon_pb2.SidecarStatus | None = None
) -> DeviceInfo:
    """The sidecar's device; its model and software version once the sidecar reported them."""
    info = DeviceInfo(
        identifiers={sidecar_device_identifier(entry_id)},
        name="Secmon sidecar",
        manufacturer=MANUFACTURER,
    )
    if status is not None and status.detector_model:
        model = status.detector_model
        if status.random_models:
            model += f" (random weights: {', '.join(status.random_models)})"
        info["model"] = model
    if status is not None and status.server_version:
        info["sw_version"] = status.server_version
    return info


@callback
def async_add_camera_entities(
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[CameraState], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every camera now and for every camera folder found later."""
    coordinator = entry.runtime_data

    @callback
    def add_camera(camera: CameraState) -> None:
        async_add_entities(entities_for(camera))

    for camera in list(coordinator.cameras.values()):
        add_camera(camera)
    entry.async_on_unload(coordinator.async_on_camera_added(add_camera))


class SecmonEntity(Entity):
    """State pushed by the coordinator; no polling.

    Available unless it shows what the sidecar computes (`_needs_sidecar`) while the sidecar is
    away.
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    _needs_sidecar = False

    def __init__(self, coordinator: SecmonCoordinator, key: str) -> None:
        """Follow `key` (a camera id or SIDECAR_KEY) in the coordinator."""
        self.coordinator = coordinator
        self._listen_key = key

    @property
    def available(self) -> bool:
        """Whether what the entity shows is current."""
        return not self._needs_sidecar or self.coordinator.sidecar.connected

    async def async_added_to_hass(self) -> None:
        """Follow the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_listener(self._listen_key, self._handle_coordinator_update)
        )

    @callback
    def _handle_coordinator_update(self) -> None:
        self.async_write_ha_state()


class SecmonCameraEntity(SecmonEntity):
    """An entity of a camera's device."""

    def __init__(self, coordinator: SecmonCoordinator, camera: CameraState, key: str) -> None:
        """`key` names the entity within the camera (unique id suffix)."""
        super().__init__(coordinator, camera.camera_id)
        entry_id = coordinator.entry.entry_id
        self.camera = camera
        self._attr_unique_id = camera_unique_id(entry_id, camera.camera_id, key)
        self._attr_device_info = camera_device_info(entry_id, camera.camera_id, camera.name)


class SecmonSidecarEntity(SecmonEntity):
    """An entity of the sidecar's device."""

    def __init__(self, coordinator: SecmonCoordinator, key: str) -> None:
        """`key` names the entity (unique id suffix)."""
        super().__init__(coordinator, SIDECAR_KEY)
        entry_id = coordinator.entry.entry_id
        self._attr_unique_id = sidecar_unique_id(entry_id, key)
        # Identifiers only: the device's name, model and version are the coordinator's to write.
        self._attr_device_info = DeviceInfo(identifiers={sidecar_device_identifier(entry_id)})
