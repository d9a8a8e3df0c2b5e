"""Actionable notifications: the companion app's notification actions ("False alarm",
"Snooze 1 h") turned into feedback and snoozes.

Each alert carries its verdict's own snapshot behind a signed URL (snapshot_url.py, served by
event_api.py), so an older notification never shows a newer picture. Notification actions are
`SECMON_FALSE_ALARM:<event_id>` and `SECMON_SNOOZE_1H:<camera_id>` (the blueprint sets them).
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util

from ..const import DOMAIN, LOGGER
from ..services import async_give_feedback

ACTION_FALSE_ALARM = "SECMON_FALSE_ALARM"
ACTION_SNOOZE = "SECMON_SNOOZE_1H"
SNOOZE_FOR = timedelta(hours=1)
EVENT_NOTIFICATION_ACTION = "mobile_app_notification_action"


@callback
def async_setup_notifications(hass: HomeAssistant) -> None:
    """Follow the companion app's notification actions."""

    async def on_action(event: Event) -> None:
        action = str(event.data.get("action", ""))
        kind, _, subject = action.partition(":")
        if not subject or kind not in (ACTION_FALSE_ALARM, ACTION_SNOOZE):
            return
        if kind == ACTION_FALSE_ALARM:
            try:
                await async_give_feedback(hass, subject, "false_alarm", "")
            except ServiceValidationError:
                LOGGER.warning("False alarm for unknown security event %s", subject)
            return
        until = dt_util.utcnow() + SNOOZE_FOR
        for entry in hass.config_entries.async_loaded_entries(DOMAIN):
            coordinator = entry.runtime_data
            if subject in coordinator.cameras:
                coordinator.alerts.async_snooze([subject], until)

    hass.bus.async_listen(EVENT_NOTIFICATION_ACTION, on_action)
