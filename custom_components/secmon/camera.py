"""The camera entity: each camera folder's latest frame with its detections drawn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import CameraState, SecmonConfigEntry
from .entity import SecmonCameraEntity, async_add_camera_entities
from .placeholder import placeholder_jpeg

# Shown until the camera's first frame has been analysed.
NO_FRAME_YET = "No frame analysed yet"

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
    # Changes with every frame: kept out of the recorder's database.
    _unrecorded_attributes = frozenset({"last_frame"})

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The camera of one folder."""
        SecmonCameraEntity.__init__(self, entry.runtime_data, camera, "camera")
        Camera.__init__(self)
        self.content_type = "image/jpeg"

    @property
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """When the latest analysed frame was captured (the camera's state does not change with
        each frame, so this stays out of the logbook)."""
        captured = self.camera.captured_at
        return {"last_frame": captured.isoformat() if captured else None}

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The latest frame with boxes (rendered in the executor, once per frame); a placeholder
        before the first one."""
        image = await self.coordinator.async_camera_image(self.camera.camera_id)
        if image is None:
            return await self.hass.async_add_executor_job(placeholder_jpeg, NO_FRAME_YET)
        return image
