"""Where a verdict's snapshot is served (event_api.py serves it), and the signed URL of it that
alerts carry for notifications."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant, callback

SNAPSHOT_URL = "/api/secmon/events/{entry_id}/{verdict_id}/snapshot"
# How long a notification's picture stays reachable by its signed URL.
SNAPSHOT_URL_VALID = timedelta(days=7)


def snapshot_path(entry_id: str, verdict_id: str) -> str:
    """Where a verdict's snapshot is served (unsigned)."""
    return SNAPSHOT_URL.format(entry_id=entry_id, verdict_id=quote(verdict_id, safe=""))


@callback
def async_snapshot_url(hass: HomeAssistant, entry_id: str, verdict_id: str) -> str:
    """The verdict's signed snapshot URL for a notification (path and query; the app adds the
    host)."""
    return async_sign_path(
        hass, snapshot_path(entry_id, verdict_id), SNAPSHOT_URL_VALID, use_content_user=True
    )
