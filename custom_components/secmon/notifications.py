"""Actionable notifications: each alert's own snapshot behind a signed URL, and the companion
app's notification actions ("False alarm", "Snooze 1 h") turned into feedback and snoozes.

The snapshot URL names the event, not the camera, so an older notification never shows a newer
picture: the view draws the event's snapshot frame with its detections, as long as the frame is
kept. Notification actions are `SECMON_FALSE_ALARM:<event_id>` and `SECMON_SNOOZE_1H:<camera_id>`
(the blueprint sets them).
"""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.http import HomeAssistantView
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .coordinator import SecmonConfigEntry
from .services import async_give_feedback
from .snapshot_url import SNAPSHOT_URL
from .storage.event_search import get_event
from .storage.verdict_store import render_snapshot

ACTION_FALSE_ALARM = "SECMON_FALSE_ALARM"
ACTION_SNOOZE = "SECMON_SNOOZE_1H"
SNOOZE_FOR = timedelta(hours=1)
EVENT_NOTIFICATION_ACTION = "mobile_app_notification_action"


class SecmonEventSnapshotView(HomeAssistantView):
    """An event's snapshot with its detections drawn (authenticated, or by signed URL)."""

    url = SNAPSHOT_URL
    name = "api:secmon:event_snapshot"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str, event_id: str) -> web.Response:
        """The JPEG, or 404 if the entry, the event or its frame is unknown or gone."""
        hass: HomeAssistant = request.app["hass"]
        entry: SecmonConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        coordinator = entry.runtime_data
        event = await hass.async_add_executor_job(get_event, coordinator.database, event_id)
        if event is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        image = await hass.async_add_executor_job(render_snapshot, coordinator.queue, event.current)
        if image is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.Response(
            body=image,
            content_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=86400"},
        )


@callback
def async_setup_notifications(hass: HomeAssistant) -> None:
    """Serve event snapshots; follow the companion app's notification actions."""
    hass.http.register_view(SecmonEventSnapshotView())

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
