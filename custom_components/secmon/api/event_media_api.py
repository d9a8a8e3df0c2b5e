"""An event's stored media at authenticated URLs: its thumbnail and its clip. Addressed by entry
and verdict id like the other event pictures (event_api.py); the files are the event's, in the
entry's media folder (storage/event_media.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web
from homeassistant.components.http.auth import async_sign_path
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from ..const import DOMAIN
from ..storage.event_media import CLIP_NAME, THUMBNAIL_NAME

if TYPE_CHECKING:
    from ..coordinator import SecmonConfigEntry

THUMBNAIL_URL = "/api/secmon/events/{entry_id}/{verdict_id}/thumbnail"
CLIP_URL = "/api/secmon/events/{entry_id}/{verdict_id}/clip"
# How long an event entity's or a bus event's signed media URL stays valid.
MEDIA_URL_VALID = timedelta(days=7)


def thumbnail_path(entry_id: str, verdict_id: str) -> str:
    """Where a verdict's event thumbnail is served (unsigned)."""
    return THUMBNAIL_URL.format(entry_id=entry_id, verdict_id=quote(verdict_id, safe=""))


def clip_path(entry_id: str, verdict_id: str) -> str:
    """Where a verdict's event clip is served (unsigned)."""
    return CLIP_URL.format(entry_id=entry_id, verdict_id=quote(verdict_id, safe=""))


@callback
def async_signed_thumbnail_url(hass: HomeAssistant, entry_id: str, verdict_id: str) -> str:
    """The thumbnail's signed URL (path and query), for attributes and bus events."""
    return async_sign_path(
        hass, thumbnail_path(entry_id, verdict_id), MEDIA_URL_VALID, use_content_user=True
    )


@callback
def async_signed_clip_url(hass: HomeAssistant, entry_id: str, verdict_id: str) -> str:
    """The event clip's signed URL (path and query), for attributes and bus events."""
    return async_sign_path(
        hass, clip_path(entry_id, verdict_id), MEDIA_URL_VALID, use_content_user=True
    )


def _read(entry: SecmonConfigEntry, verdict_id: str, name: str) -> bytes | None:
    coordinator = entry.runtime_data
    with coordinator.database.connection() as db:
        row = db.execute(
            "SELECT event_id FROM verdicts WHERE verdict_id = ?", (verdict_id,)
        ).fetchone()
    return None if row is None else coordinator.media.read(str(row[0]), name)


class _EventMediaView(HomeAssistantView):
    """One of an event's stored files, or 404."""

    requires_auth = True
    file_name = THUMBNAIL_NAME
    content_type = "image/jpeg"

    async def get(self, request: web.Request, entry_id: str, verdict_id: str) -> web.Response:
        """The file, or 404."""
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return web.Response(status=404)
        data = await hass.async_add_executor_job(_read, entry, verdict_id, self.file_name)
        if data is None:
            return web.Response(status=404)
        return web.Response(
            body=data,
            content_type=self.content_type,
            headers={"Cache-Control": "private, max-age=86400"},
        )


class EventThumbnailView(_EventMediaView):
    """An event's thumbnail (about 320x240, detections drawn)."""

    url = THUMBNAIL_URL
    name = "api:secmon:event_thumbnail"


class EventClipView(_EventMediaView):
    """An event's clip (H.264 MP4 of its frames, detections drawn)."""

    url = CLIP_URL
    name = "api:secmon:event_clip"
    file_name = CLIP_NAME
    content_type = "video/mp4"


@callback
def async_setup_event_media_api(hass: HomeAssistant) -> None:
    """Register the media views (once, for every entry)."""
    hass.http.register_view(EventThumbnailView())
    hass.http.register_view(EventClipView())
