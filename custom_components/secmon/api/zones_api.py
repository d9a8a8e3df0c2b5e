"""The zone editor's backend: `secmon/zones/get` (a camera's zones, the kinds, its camera entity
for the picture) and `secmon/zones/set` (admins only) over the websocket API, and the camera's
latest picture without its saved zones outlined (PLAIN_PICTURE_URL: what the editor shows while
zones are being changed, so the saved outlines do not mix with the edited ones).

A set is checked by the rules of the options' text field (zones_options.py) and stored in the
entry's options as the options flow stores it; the entry then reloads, so the sidecar and the zone
sensors get the new zones as they do after the options flow. The set answers once that reload is
done, so the editor's next request finds the entry loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from aiohttp import web
from homeassistant.components import websocket_api
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import ERR_NOT_FOUND
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from ..camera import NO_FRAME_YET
from ..const import CONF_CAMERA_ZONES, DOMAIN, ZONE_KINDS
from ..context.zones_options import MAX_POINTS, MAX_ZONES, format_zones, parse_zones
from ..coordinator import SecmonConfigEntry
from ..entity import camera_unique_id
from ..placeholder import placeholder_jpeg

ERR_ZONES_INVALID = "zones_invalid"
PLAIN_PICTURE_URL = "/api/secmon/zones/{entry_id}/{camera_id}/picture"
# How long a set waits for the entry's reload before it answers all the same.
RELOAD_WAIT_S = 120.0


class ZonesError(ValueError):
    """Zones that the options could not hold; `reason` says which and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _point_reason(point: Any) -> str | None:
    if not isinstance(point, list | tuple) or len(point) != 2:
        return "a point is not a pair x, y"
    for c in point:
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 <= c <= 1:
            return "a point lies outside the picture (coordinates go from 0 to 1)"
    return None


def _zone_reason(zone: Mapping[str, Any]) -> str | None:
    """Why one zone cannot be stored; None when it can."""
    name = zone.get("name")
    if not isinstance(name, str) or not name.strip():
        return "it has no name"
    if "|" in name or "\n" in name or "\r" in name:
        return "its name may not contain | or a line break"
    if zone.get("kind") not in ZONE_KINDS:
        return f"its kind must be one of {', '.join(ZONE_KINDS)}"
    priority = zone.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        return "its priority is not a whole number"
    points = zone.get("points")
    if not isinstance(points, list) or not 3 <= len(points) <= MAX_POINTS:
        return f"it needs 3 to {MAX_POINTS} points"
    for point in points:
        if (reason := _point_reason(point)) is not None:
            return reason
    return None


def checked_zones(zones: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The zones as the options store them (exactly what their text field reads back)."""
    if len(zones) > MAX_ZONES:
        raise ZonesError(f"at most {MAX_ZONES} zones per camera")
    for number, zone in enumerate(zones, 1):
        if (reason := _zone_reason(zone)) is not None:
            name = zone.get("name")
            label = f"«{name.strip()}»" if isinstance(name, str) and name.strip() else str(number)
            raise ZonesError(f"zone {label}: {reason}")
    names = [str(z["name"]).strip() for z in zones]
    if len(set(names)) != len(names):
        raise ZonesError("two zones have the same name")
    try:
        return parse_zones(format_zones(zones))
    except ValueError as err:  # what the checks above missed, the text field's parser refuses
        raise ZonesError(str(err)) from err


# States a reload ends in when it fails.
_SETTLED_FAILURES = (
    ConfigEntryState.SETUP_ERROR,
    ConfigEntryState.SETUP_RETRY,
    ConfigEntryState.MIGRATION_ERROR,
    ConfigEntryState.FAILED_UNLOAD,
)


def _entry(hass: HomeAssistant, entry_id: str) -> SecmonConfigEntry | None:
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        return None
    return entry


def _camera_entry(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> SecmonConfigEntry | None:
    """The entry of the message's camera; None after an error was sent."""
    entry = _entry(hass, msg["entry_id"])
    if entry is None:
        connection.send_error(
            msg["id"],
            ERR_NOT_FOUND,
            f"No loaded secmon entry {msg['entry_id']}",
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"entry_id": msg["entry_id"]},
        )
        return None
    if msg["camera_id"] not in entry.runtime_data.cameras:
        connection.send_error(
            msg["id"],
            ERR_NOT_FOUND,
            f"secmon has no camera {msg['camera_id']}",
            translation_domain=DOMAIN,
            translation_key="zones_unknown_camera",
            translation_placeholders={"camera_id": msg["camera_id"]},
        )
        return None
    return entry


def camera_zones(entry: SecmonConfigEntry, camera_id: str) -> list[dict[str, Any]]:
    """A camera's zones as the options hold them."""
    zones: Mapping[str, list[dict[str, Any]]] = entry.options.get(CONF_CAMERA_ZONES) or {}
    return list(zones.get(camera_id, []))


@websocket_command(
    {
        vol.Required("type"): "secmon/zones/get",
        vol.Required("entry_id"): str,
        vol.Required("camera_id"): str,
    }
)
@callback
def ws_get_zones(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """A camera's zones, the zone kinds, and the camera entity whose picture the editor shows."""
    if (entry := _camera_entry(hass, connection, msg)) is None:
        return
    camera_id: str = msg["camera_id"]
    entity_id = er.async_get(hass).async_get_entity_id(
        "camera", DOMAIN, camera_unique_id(entry.entry_id, camera_id, "camera")
    )
    connection.send_result(
        msg["id"],
        {
            "entry_id": entry.entry_id,
            "camera_id": camera_id,
            "camera_name": entry.runtime_data.cameras[camera_id].name,
            "entity_id": entity_id,
            "zones": camera_zones(entry, camera_id),
            "kinds": list(ZONE_KINDS),
            "max_zones": MAX_ZONES,
            "max_points": MAX_POINTS,
            "can_edit": connection.user.is_admin,
            "plain_picture_path": PLAIN_PICTURE_URL.format(
                entry_id=entry.entry_id, camera_id=camera_id
            ),
        },
    )


@require_admin
@websocket_command(
    {
        vol.Required("type"): "secmon/zones/set",
        vol.Required("entry_id"): str,
        vol.Required("camera_id"): str,
        vol.Required("zones"): [dict],
    }
)
@async_response
async def ws_set_zones(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Replace a camera's zones (an empty list removes them)."""
    if (entry := _camera_entry(hass, connection, msg)) is None:
        return
    try:
        zones = checked_zones(msg["zones"])
    except ZonesError as err:
        connection.send_error(
            msg["id"],
            ERR_ZONES_INVALID,
            err.reason,
            translation_domain=DOMAIN,
            translation_key="zones_rejected",
            translation_placeholders={"reason": err.reason},
        )
        return
    camera_id: str = msg["camera_id"]
    by_camera = {
        cid: list(z)
        for cid, z in (entry.options.get(CONF_CAMERA_ZONES) or {}).items()
        if cid != camera_id
    }
    if zones:
        by_camera[camera_id] = zones
    reloaded = asyncio.Event()
    left = False

    @callback
    def _on_state_change() -> None:
        nonlocal left
        if entry.state is ConfigEntryState.LOADED:
            if left:
                reloaded.set()
        elif entry.state in _SETTLED_FAILURES:
            reloaded.set()
        else:
            left = True

    remove = entry.async_on_state_change(_on_state_change)
    try:
        # The update listener reloads the entry, as after the options flow.
        if hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_CAMERA_ZONES: by_camera}
        ):
            async with asyncio.timeout(RELOAD_WAIT_S):
                await reloaded.wait()
    except TimeoutError:
        pass
    finally:
        remove()
    connection.send_result(msg["id"], {"zones": zones})


class PlainPictureView(HomeAssistantView):
    """A camera's latest picture with its boxes, without its zones (a placeholder before its
    first frame); 404 for a camera the entry does not have."""

    url = PLAIN_PICTURE_URL
    name = "api:secmon:zones:picture"
    requires_auth = True

    async def get(self, request: web.Request, entry_id: str, camera_id: str) -> web.Response:
        """The picture (JPEG), or 404."""
        entry = _entry(request.app[KEY_HASS], entry_id)
        if entry is None or camera_id not in entry.runtime_data.cameras:
            return web.Response(status=404)
        data = await entry.runtime_data.async_camera_image(camera_id, with_zones=False)
        if data is None:
            # As the camera entity shows it before its first frame.
            data = await request.app[KEY_HASS].async_add_executor_job(
                placeholder_jpeg, NO_FRAME_YET
            )
        return web.Response(
            body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )


@callback
def async_setup_zones_api(hass: HomeAssistant) -> None:
    """Register the zone editor's websocket commands and picture (once, for every entry)."""
    websocket_api.async_register_command(hass, ws_get_zones)
    websocket_api.async_register_command(hass, ws_set_zones)
    hass.http.register_view(PlainPictureView())
