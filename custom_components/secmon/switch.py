"""Alert switches: per camera (`switch.<cam>_alerts`) and house-wide (`switch.secmon_alerts`).

On means armed. A snooze (`secmon.snooze`) shows as the `snoozed_until` attribute. Both restore
their state and snooze after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import STATE_OFF
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity
from homeassistant.util import dt as dt_util

from .alert_entity import SecmonAlertEntity
from .coordinator import CameraState, SecmonConfigEntry
from .entity import SecmonEntity, async_add_camera_entities, sidecar_unique_id
from .verdicts.alerts import HOUSE_KEY

PARALLEL_UPDATES = 0

ATTR_SNOOZED_UNTIL = "snoozed_until"

CAMERA_ALERTS = SwitchEntityDescription(key="alerts", translation_key="camera_alerts")
HOUSE_ALERTS = SwitchEntityDescription(key="house_alerts", translation_key="house_alerts")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The house-wide switch, and one per camera (also for cameras found later)."""
    async_add_entities([SecmonHouseAlertsSwitch(entry)])
    async_add_camera_entities(
        entry, async_add_entities, lambda camera: [SecmonCameraAlertsSwitch(entry, camera)]
    )


def _restored_until(attributes: dict[str, Any]) -> datetime | None:
    value = attributes.get(ATTR_SNOOZED_UNTIL)
    return dt_util.parse_datetime(value) if isinstance(value, str) else None


def _until_attributes(until: datetime | None) -> dict[str, Any]:
    return {ATTR_SNOOZED_UNTIL: until.isoformat() if until is not None else None}


class SecmonCameraAlertsSwitch(SecmonAlertEntity, SwitchEntity, RestoreEntity):
    """Whether a camera's security events may alert."""

    entity_description = CAMERA_ALERTS

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The alert switch of one camera."""
        super().__init__(entry.runtime_data, camera, CAMERA_ALERTS.key)

    async def async_added_to_hass(self) -> None:
        """Restore armed and snooze."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None:
            self.alerts.armed = last.state != STATE_OFF
            self.alerts.snoozed_until = _restored_until(dict(last.attributes))

    @property
    def is_on(self) -> bool:
        """Armed."""
        return self.alerts.armed

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Until when the camera's alerts are snoozed."""
        return _until_attributes(self.alerts.snoozed_until)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Arm."""
        self.alerts.armed = True
        self.async_alerts_changed()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Disarm."""
        self.alerts.armed = False
        self.async_alerts_changed()


class SecmonHouseAlertsSwitch(SecmonEntity, SwitchEntity, RestoreEntity):
    """Whether any security event may alert; no device (it is the whole house's)."""

    entity_description = HOUSE_ALERTS

    def __init__(self, entry: SecmonConfigEntry) -> None:
        """The entry's house-wide switch."""
        super().__init__(entry.runtime_data, HOUSE_KEY)
        self._attr_unique_id = sidecar_unique_id(entry.entry_id, HOUSE_ALERTS.key)

    async def async_added_to_hass(self) -> None:
        """Restore armed and snooze; follow the house-wide state."""
        await super().async_added_to_hass()
        house = self.coordinator.alerts.house
        if (last := await self.async_get_last_state()) is not None:
            house.armed = last.state != STATE_OFF
            house.snoozed_until = _restored_until(dict(last.attributes))
        self.async_on_remove(
            self.coordinator.alerts.async_add_listener(HOUSE_KEY, self._handle_coordinator_update)
        )

    @property
    def is_on(self) -> bool:
        """Armed."""
        return self.coordinator.alerts.house.armed

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Until when every alert is snoozed."""
        return _until_attributes(self.coordinator.alerts.house.snoozed_until)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Arm the house."""
        self.coordinator.alerts.house.armed = True
        self._changed()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Disarm the house."""
        self.coordinator.alerts.house.armed = False
        self._changed()

    @callback
    def _changed(self) -> None:
        self.coordinator.alerts.async_changed(HOUSE_KEY)
