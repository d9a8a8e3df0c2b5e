"""Base of the entities that show and set a camera's alert rules (verdicts/alerts.py)."""

from __future__ import annotations

from homeassistant.core import callback

from .coordinator import CameraState, SecmonCoordinator
from .entity import SecmonCameraEntity
from .verdicts.alerts import CameraAlerts


class SecmonAlertEntity(SecmonCameraEntity):
    """Follows the camera's alert state; always available (the rules are HA's, not the
    sidecar's)."""

    def __init__(self, coordinator: SecmonCoordinator, camera: CameraState, key: str) -> None:
        """The alert entity `key` of one camera."""
        super().__init__(coordinator, camera, key)

    @property
    def alerts(self) -> CameraAlerts:
        """The camera's alert state."""
        return self.coordinator.alerts.camera(self.camera.camera_id)

    async def async_added_to_hass(self) -> None:
        """Follow the camera's alert state as well."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.alerts.async_add_listener(
                self.camera.camera_id, self._handle_coordinator_update
            )
        )

    @callback
    def async_alerts_changed(self) -> None:
        """This entity changed the camera's alert state: tell the camera's other entities."""
        self.coordinator.alerts.async_changed(self.camera.camera_id)
