"""The event snapshot: the current verdict's most telling frame with its detections drawn."""

from __future__ import annotations

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraState, SecmonConfigEntry
from .entity import SecmonCameraEntity, async_add_camera_entities
from .placeholder import placeholder_jpeg

# Shown until the camera's first security event.
NO_EVENT_YET = "No security event yet"

PARALLEL_UPDATES = 0

EVENT_SNAPSHOT = ImageEntityDescription(key="event_snapshot", translation_key="event_snapshot")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """An event snapshot per camera, also for cameras found later."""

    async_add_camera_entities(
        entry, async_add_entities, lambda camera: [SecmonEventSnapshot(hass, entry, camera)]
    )


class SecmonEventSnapshot(SecmonCameraEntity, ImageEntity):
    """Rendered when the verdict is stored (in the executor) and kept in the SQLite store."""

    entity_description = EVENT_SNAPSHOT
    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The snapshot of one camera's current security event."""
        SecmonCameraEntity.__init__(self, entry.runtime_data, camera, EVENT_SNAPSHOT.key)
        ImageEntity.__init__(self, hass)
        self._attr_image_last_updated = camera.snapshot_at

    def _handle_coordinator_update(self) -> None:
        if self.camera.snapshot_at != self._attr_image_last_updated:
            self._attr_image_last_updated = self.camera.snapshot_at
            self.async_write_ha_state()

    async def async_image(self) -> bytes | None:
        """The stored snapshot; a placeholder until the camera has an event with a snapshot."""
        if self.camera.snapshot is None:
            return await self.hass.async_add_executor_job(placeholder_jpeg, NO_EVENT_YET)
        return self.camera.snapshot
