"""Security events for the frontend: `secmon/events/list` (paged), `secmon/events/subscribe`
(live) over the websocket API, and each event's snapshot and frames at authenticated URLs.

Pictures are addressed by entry and verdict id; the websocket answers carry them as signed paths
(an `<img>` cannot send the bearer token), valid for SIGNED_URL_VALIDITY. Notifications link the
same snapshot view by a longer-lived signed path (snapshot_url.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import quote

import voluptuous as vol
from aiohttp import web
from homeassistant.components import websocket_api
from homeassistant.components.http.auth import async_sign_path
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import async_response, websocket_command
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from ..const import DOMAIN, EVENT_SECURITY, EVENT_SECURITY_UPDATED
from ..coordinator import SecmonConfigEntry
from ..storage.event_search import StoredEvent, get_event, get_verdict, list_events
from ..storage.verdict_store import render_snapshot
from .event_media_api import clip_path, thumbnail_path
from .snapshot_url import SNAPSHOT_URL, snapshot_path

SIGNED_URL_VALIDITY = timedelta(hours=24)
PAGE_DEFAULT = 20
PAGE_MAX = 100
FRAME_URL = "/api/secmon/events/{entry_id}/{verdict_id}/frames/{index}"

Signer = Callable[[str], str]


def loaded_entries(hass: HomeAssistant) -> list[SecmonConfigEntry]:
    """secmon's entries that are set up."""
    return [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]


def frame_path(entry_id: str, verdict_id: str, index: int) -> str:
    """Where a verdict's `index`th frame is served (unsigned)."""
    return FRAME_URL.format(entry_id=entry_id, verdict_id=quote(verdict_id, safe=""), index=index)


def event_payload(
    entry: SecmonConfigEntry, event: StoredEvent, sign: Signer, *, has_clip: bool = False
) -> dict[str, Any]:
    """An event as the card shows it, its pictures as (signed) URLs."""
    record = event.current
    camera = entry.runtime_data.cameras.get(record.camera_id)
    verdict_id = record.verdict_id
    return {
        **record.attributes(is_update=False),
        "config_entry_id": entry.entry_id,
        "camera_id": record.camera_id,
        "camera_name": camera.name if camera is not None else record.message.camera_name,
        "stored_at": event.stored_at,
        "announced": event.announced,
        "close_reason": record.message.close_reason,
        "snapshot_url": sign(snapshot_path(entry.entry_id, verdict_id))
        if record.message.snapshot_frame_id
        else None,
        "thumbnail_url": sign(thumbnail_path(entry.entry_id, verdict_id))
        if record.message.snapshot_frame_id
        else None,
        "clip_url": sign(clip_path(entry.entry_id, verdict_id)) if has_clip else None,
        "frame_urls": [
            sign(frame_path(entry.entry_id, verdict_id, i))
            for i in range(len(record.message.frame_ids))
        ],
    }


def _signer(hass: HomeAssistant, connection: ActiveConnection) -> Signer:
    def sign(path: str) -> str:
        return async_sign_path(
            hass, path, SIGNED_URL_VALIDITY, refresh_token_id=connection.refresh_token_id
        )

    return sign


def _cameras_filter(msg: dict[str, Any]) -> set[str] | None:
    cameras = msg.get("cameras")
    return set(cameras) if cameras else None


@websocket_command(
    {
        vol.Required("type"): "secmon/events/list",
        vol.Optional("cameras"): [str],
        vol.Optional("limit", default=PAGE_DEFAULT): vol.All(int, vol.Range(min=1, max=PAGE_MAX)),
        vol.Optional("before"): vol.Any(None, vol.Coerce(float)),
        vol.Optional("zone"): vol.Any(None, str),
    }
)
@async_response
async def ws_list_events(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """A page of events, newest first, across every loaded entry; `before` continues a page;
    `zone` keeps the events that were in a zone of that name (any case)."""
    cameras = _cameras_filter(msg)
    limit: int = msg["limit"]
    before: float | None = msg.get("before")
    found: list[tuple[float, SecmonConfigEntry, StoredEvent]] = []
    camera_list: list[dict[str, str]] = []
    for entry in loaded_entries(hass):
        events = await hass.async_add_executor_job(
            partial(
                list_events,
                entry.runtime_data.database,
                cameras=cameras,
                before=before,
                zone=msg.get("zone") or None,
                limit=limit + 1,
            )
        )
        found.extend((e.stored_at, entry, e) for e in events)
        camera_list.extend(
            {"camera_id": c.camera_id, "name": c.name, "config_entry_id": entry.entry_id}
            for c in sorted(entry.runtime_data.cameras.values(), key=lambda c: c.name)
        )
    newest = heapq.nlargest(limit + 1, found, key=lambda item: item[0])
    sign = _signer(hass, connection)
    clips: dict[str, set[str]] = {}
    for entry in {entry.entry_id: entry for _, entry, _ in newest[:limit]}.values():
        ids = [event.event_id for _, e, event in newest[:limit] if e is entry]
        clips[entry.entry_id] = await hass.async_add_executor_job(
            entry.runtime_data.media.with_clips, ids
        )
    page = [
        event_payload(
            entry, event, sign, has_clip=event.event_id in clips.get(entry.entry_id, set())
        )
        for _, entry, event in newest[:limit]
    ]
    connection.send_result(
        msg["id"],
        {
            "events": page,
            "cameras": camera_list,
            "next_before": page[-1]["stored_at"] if len(newest) > limit else None,
        },
    )


@websocket_command(
    {
        vol.Required("type"): "secmon/events/subscribe",
        vol.Optional("cameras"): [str],
        vol.Optional("zone"): vol.Any(None, str),
    }
)
@callback
def ws_subscribe_events(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Send every new or updated event (of `cameras`, or all; in `zone`, or any) as it is
    stored."""
    cameras = _cameras_filter(msg)
    zone = str(msg.get("zone") or "").casefold()
    sign = _signer(hass, connection)
    msg_id: int = msg["id"]

    async def forward(bus_event: Event[dict[str, Any]]) -> None:
        data = bus_event.data
        if cameras is not None and data.get("camera_id") not in cameras:
            return
        entry = hass.config_entries.async_get_entry(str(data.get("config_entry_id")))
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return
        stored = await hass.async_add_executor_job(
            get_event, entry.runtime_data.database, data["event_id"]
        )
        if stored is None:
            return
        if zone and zone not in {z.casefold() for z in stored.current.message.zones}:
            return
        connection.send_message(
            event_message(
                msg_id,
                {
                    "event": event_payload(
                        entry, stored, sign, has_clip=bool(data.get("clip_url"))
                    ),
                    "update": bus_event.event_type == EVENT_SECURITY_UPDATED
                    or bool(data.get("is_update")),
                },
            )
        )

    unsubscribers = [
        hass.bus.async_listen(event_type, forward)
        for event_type in (EVENT_SECURITY, EVENT_SECURITY_UPDATED)
    ]

    @callback
    def unsubscribe() -> None:
        for remove in unsubscribers:
            remove()

    connection.subscriptions[msg_id] = unsubscribe
    connection.send_result(msg_id)


class _EventPictureView(HomeAssistantView):
    """Base for an event's pictures: the entry's history, 404 for anything not found."""

    requires_auth = True

    async def _respond(
        self,
        request: web.Request,
        entry_id: str,
        read: Callable[[SecmonConfigEntry], bytes | None],
    ) -> web.Response:
        hass = request.app[KEY_HASS]
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
            return web.Response(status=404)
        image = await hass.async_add_executor_job(read, entry)
        if image is None:
            return web.Response(status=404)
        return web.Response(
            body=image,
            content_type=_content_type(image),
            headers={"Cache-Control": "private, max-age=86400"},
        )


class EventSnapshotView(_EventPictureView):
    """A verdict's snapshot with its detections drawn."""

    url = SNAPSHOT_URL
    name = "api:secmon:event_snapshot"

    async def get(self, request: web.Request, entry_id: str, verdict_id: str) -> web.Response:
        """The JPEG, or 404."""
        return await self._respond(request, entry_id, partial(_snapshot, verdict_id=verdict_id))


class EventFrameView(_EventPictureView):
    """One frame of a verdict's event, as the camera uploaded it."""

    url = FRAME_URL
    name = "api:secmon:event_frame"

    async def get(
        self, request: web.Request, entry_id: str, verdict_id: str, index: str
    ) -> web.Response:
        """The image, or 404."""
        if not index.isdigit():
            return web.Response(status=404)
        return await self._respond(
            request, entry_id, partial(_frame, verdict_id=verdict_id, index=int(index))
        )


def _snapshot(entry: SecmonConfigEntry, verdict_id: str) -> bytes | None:
    """A verdict's snapshot with its detections drawn; None if it has none or it is gone."""
    record = get_verdict(entry.runtime_data.database, verdict_id)
    return render_snapshot(entry.runtime_data.queue, record) if record is not None else None


def _frame(entry: SecmonConfigEntry, verdict_id: str, index: int) -> bytes | None:
    """The `index`th frame of a verdict's event, as stored; None if there is none."""
    record = get_verdict(entry.runtime_data.database, verdict_id)
    if record is None or not 0 <= index < len(record.message.frame_ids):
        return None
    return entry.runtime_data.queue.frame_image(record.message.frame_ids[index])


def _content_type(image: bytes) -> str:
    if image.startswith(b"\x89PNG"):
        return "image/png"
    return "image/jpeg"


@callback
def async_setup_event_api(hass: HomeAssistant) -> None:
    """Register the websocket commands and the picture views (once, for every entry)."""
    websocket_api.async_register_command(hass, ws_list_events)
    websocket_api.async_register_command(hass, ws_subscribe_events)
    hass.http.register_view(EventSnapshotView())
    hass.http.register_view(EventFrameView())
