"""An event's stored media at authenticated URLs: its thumbnail (and, when there is one, its
clip). Addressed by entry and verdict id like the other event pictures (event_api.py); the files
are the event's, in the entry's media folder (storage/event_media.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import DOMAIN
from .storage.event_media import THUMBNAIL_NAME

if TYPE_CHECKING:
    from .coordinator import SecmonConfigEntry

THUMBNAIL_URL = "/api/secmon/events/{entry_id}/{verdict_id}/thumbnail"
# How long an event entity's or a bus event's signed media URL stays valid.
MEDIA_URL_VALID = timedelta(days=7)


def thumbnail_path(entry_id: str, verdict_id: str) -> str:
    """Where a verdict's event thumbnail is served (unsigned)."""
    return THUMBNAIL_URL.format(entry_id=entry_id, verdict_id=quote(verdict_id, safe=""))


@callback
def async_signed_thumbnail_url(hass: HomeAssistant, entry_id: str, verdict_id: str) -> str:
    """The thumbnail's signed URL (path and query), for attributes and bus events."""
    return async_sign_path(
        hass, thumbnail_path(entry_id, verdict_id), MEDIA_URL_VALID, use_content_user=True
    )


def _read(entry: SecmonConfigEntry, verdict_id: str, name: str) -> bytes | None:
    coordinator = entry.runtime_data
    with coordinator.database.connection() as db:
        row = db.execute(
            "SELECT event_id FROM verdicts WHERE verdict_id = ?", (verdict_id,)
        ).fetchone()
    return None if row is None else coordinator.media.read(str(row[0]), name)


class EventThumbnailView(HomeAssistantView):
    """An event's thumbnail (about 320x240, detections drawn), or 404."""

    url = THUMBNAIL_URL
    name = "api:secmon:event_thumbnail"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str, verdict_id: str) -> web.Response:
        """The JPEG, or 404."""
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return web.Response(status=404)
        image = await hass.async_add_executor_job(_read, entry, verdict_id, THUMBNAIL_NAME)
        if image is None:
            return web.Response(status=404)
        return web.Response(
            body=image,
            content_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=86400"},
        )


@callback
def async_setup_event_media_api(hass: HomeAssistant) -> None:
    """Register the media views (once, for every entry)."""
    hass.http.register_view(EventThumbnailView())
