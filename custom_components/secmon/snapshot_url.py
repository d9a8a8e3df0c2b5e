"""The signed URL of a security event's own snapshot (served by notifications.py)."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant, callback

SNAPSHOT_URL = "/api/secmon/event_snapshot/{entry_id}/{event_id}"
# How long a notification's picture stays reachable by its signed URL.
SNAPSHOT_URL_VALID = timedelta(days=7)


@callback
def async_snapshot_url(hass: HomeAssistant, entry_id: str, event_id: str) -> str:
    """The event's signed snapshot URL (path and query; the app adds the host)."""
    path = SNAPSHOT_URL.format(entry_id=entry_id, event_id=event_id)
    return async_sign_path(hass, path, SNAPSHOT_URL_VALID, use_content_user=True)
