"""`number.<cam>_alert_cooldown`: the least time between two alerts of a camera."""

from __future__ import annotations

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntityDescription,
    NumberMode,
    RestoreNumber,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .alert_entity import SecmonAlertEntity
from .const import MAX_ALERT_COOLDOWN
from .coordinator import CameraState, SecmonConfigEntry
from .entity import async_add_camera_entities

PARALLEL_UPDATES = 0

ALERT_COOLDOWN = NumberEntityDescription(
    key="alert_cooldown",
    translation_key="alert_cooldown",
    device_class=NumberDeviceClass.DURATION,
    native_unit_of_measurement=UnitOfTime.SECONDS,
    native_min_value=0,
    native_max_value=MAX_ALERT_COOLDOWN,
    native_step=1,
    mode=NumberMode.BOX,
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One per camera, also for cameras found later."""
    async_add_camera_entities(
        entry, async_add_entities, lambda camera: [SecmonAlertCooldownNumber(entry, camera)]
    )


class SecmonAlertCooldownNumber(SecmonAlertEntity, RestoreNumber):
    """A camera's alert cooldown in seconds; restored after a restart."""

    entity_description = ALERT_COOLDOWN

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The alert cooldown of one camera."""
        super().__init__(entry.runtime_data, camera, ALERT_COOLDOWN.key)

    async def async_added_to_hass(self) -> None:
        """Restore the cooldown."""
        await super().async_added_to_hass()
        last = await self.async_get_last_number_data()
        if last is not None and last.native_value is not None:
            self.alerts.cooldown = min(max(float(last.native_value), 0.0), MAX_ALERT_COOLDOWN)

    @property
    def native_value(self) -> float:
        """Seconds."""
        return self.alerts.cooldown

    async def async_set_native_value(self, value: float) -> None:
        """Change the cooldown."""
        self.alerts.cooldown = value
        self.async_alerts_changed()
