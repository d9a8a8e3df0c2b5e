"""The camera entity: each camera folder's latest frame with its detections drawn."""

from __future__ import annotations

from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraState, SecmonConfigEntry
from .entity import SecmonCameraEntity, async_add_camera_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A camera entity per camera folder, also for folders found later."""

    async_add_camera_entities(
        entry, async_add_entities, lambda camera: [SecmonCamera(entry, camera)]
    )


class SecmonCamera(SecmonCameraEntity, Camera):
    """Latest analysed frame; stays available (with its last image) while the sidecar is away."""

    _attr_name = None

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The camera of one folder."""
        SecmonCameraEntity.__init__(self, entry.runtime_data, camera, "camera")
        Camera.__init__(self)
        self.content_type = "image/jpeg"

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The latest frame with boxes (rendered in the executor, once per frame)."""
        return await self.coordinator.async_camera_image(self.camera.camera_id)
