"""`select.<cam>_alert_level`: the lowest risk level of a camera's events that alerts."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .alert_entity import SecmonAlertEntity
from .const import RISK_LEVELS
from .coordinator import CameraState, SecmonConfigEntry
from .entity import async_add_camera_entities

PARALLEL_UPDATES = 0

ALERT_LEVEL = SelectEntityDescription(
    key="alert_level",
    translation_key="alert_level",
    options=list(RISK_LEVELS),
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One per camera, also for cameras found later."""
    async_add_camera_entities(
        entry, async_add_entities, lambda camera: [SecmonAlertLevelSelect(entry, camera)]
    )


class SecmonAlertLevelSelect(SecmonAlertEntity, SelectEntity, RestoreEntity):
    """A camera's minimum alert level; restored after a restart."""

    entity_description = ALERT_LEVEL

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The alert level of one camera."""
        super().__init__(entry.runtime_data, camera, ALERT_LEVEL.key)

    async def async_added_to_hass(self) -> None:
        """Restore the level."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None and last.state in RISK_LEVELS:
            self.alerts.min_level = last.state

    @property
    def current_option(self) -> str:
        """The minimum level."""
        return self.alerts.min_level

    async def async_select_option(self, option: str) -> None:
        """Change the minimum level."""
        self.alerts.min_level = option
        self.async_alerts_changed()
