"""The security event entity: fires when a camera's security event is announced.

Fires once per event (the first verdict) and again only when a later verdict of the same event
raises its risk level (attribute `is_update: true`); see verdicts/rule.py for the rule. Event types
are the risk levels, so automations can trigger on `high` and `critical` only.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import EVENT_SECURITY_UPDATED, RISK_LEVELS
from .coordinator import CameraState, SecmonConfigEntry
from .entity import SecmonCameraEntity, async_add_camera_entities
from .verdicts.announce import SECURITY_EVENT_KEY
from .verdicts.enrichment import UNRECORDED_KEYS

PARALLEL_UPDATES = 0

ALERT_EVENT_KEY = "alert"
# The event's pictures and clip, made when its batch verdict arrives: that verdict may not be
# announced again (it did not raise the level), yet the entity links them.
MEDIA_KEYS = ("thumbnail_url", "clip_url")

SECURITY_EVENT = EventEntityDescription(
    key=SECURITY_EVENT_KEY,
    translation_key="security_event",
    event_types=list(RISK_LEVELS),
)
ALERT_EVENT = EventEntityDescription(
    key=ALERT_EVENT_KEY,
    translation_key="alert",
    event_types=list(RISK_LEVELS),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A security event and an alert entity per camera, also for cameras found later."""

    async_add_camera_entities(
        entry,
        async_add_entities,
        lambda camera: [SecmonSecurityEvent(entry, camera), SecmonAlertEvent(entry, camera)],
    )


class SecmonSecurityEvent(SecmonCameraEntity, EventEntity):
    """A camera's security events; restores its last event after a restart."""

    entity_description = SECURITY_EVENT
    # Per-object details and enricher runs: in the state, not in the recorder's history.
    _unrecorded_attributes = UNRECORDED_KEYS

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The event entity of one camera."""
        super().__init__(entry.runtime_data, camera, SECURITY_EVENT.key)

    async def async_added_to_hass(self) -> None:
        """Follow the camera's announcements, and the media of its last event."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_event_listener(self.camera.camera_id, self._async_fire)
        )
        self.async_on_remove(
            self.hass.bus.async_listen(EVENT_SECURITY_UPDATED, self._async_event_updated)
        )

    @callback
    def _async_fire(self, level: str, attributes: dict[str, Any]) -> None:
        self._attr_extra_state_attributes = {}
        self._trigger_event(level, attributes)
        self.async_write_ha_state()

    @callback
    def _async_event_updated(self, event: Event) -> None:
        """A later verdict of the event shown, not announced: link its thumbnail and clip
        (the event and its time stay what they are)."""
        data = event.data
        if data.get("entity_id") != self.entity_id or self.state_attributes.get(
            "event_id"
        ) != data.get("event_id"):
            return
        media = {key: data[key] for key in MEDIA_KEYS if data.get(key)}
        shown = {**self.state_attributes, **(self.extra_state_attributes or {})}
        if any(shown.get(key) != value for key, value in media.items()):
            self._attr_extra_state_attributes = media
            self.async_write_ha_state()


class SecmonAlertEvent(SecmonCameraEntity, EventEntity):
    """A camera's alerts (verdicts/alerts.py); its restored last firing restarts the cooldown."""

    entity_description = ALERT_EVENT
    _unrecorded_attributes = UNRECORDED_KEYS

    def __init__(self, entry: SecmonConfigEntry, camera: CameraState) -> None:
        """The alert entity of one camera."""
        super().__init__(entry.runtime_data, camera, ALERT_EVENT.key)

    async def async_added_to_hass(self) -> None:
        """Follow the camera's alerts; the last one (restored) counts for the cooldown."""
        await super().async_added_to_hass()
        alerts = self.coordinator.alerts.camera(self.camera.camera_id)
        if (last := dt_util.parse_datetime(self.state or "")) is not None and (
            alerts.last_alert_at is None or last > alerts.last_alert_at
        ):
            alerts.last_alert_at = last
        self.async_on_remove(
            self.coordinator.alerts.async_add_alert_listener(
                self.camera.camera_id, self._async_fire
            )
        )

    @callback
    def _async_fire(self, level: str, attributes: dict[str, Any]) -> None:
        self._trigger_event(level, attributes)
        self.async_write_ha_state()
