"""The zone editor's backend: `secmon/zones/get` and `secmon/zones/set` over the websocket API,
stored as the options flow stores zones and sent to the sidecar after the reload."""

from __future__ import annotations

import io
from typing import Any

import pytest
from homeassistant.components.camera import async_get_image
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.secmon.card import CARD_URL, ZONES_CARD_URL
from custom_components.secmon.const import CONF_CAMERA_ZONES, ZONE_KINDS
from custom_components.secmon.context.zones_options import MAX_ZONES, format_zones, parse_zones

from .helpers import wait_for


async def camera_image(hass: HomeAssistant, entity_id: str) -> bytes:
    """What the camera entity shows."""
    return (await async_get_image(hass, entity_id)).content

TRIANGLE = {"name": "Gate", "kind": "driveway", "priority": 3,
            "points": [[0.1, 0.2], [0.5, 0.9], [0.123456789, 1]]}
PORCH = {"name": "Porch", "kind": "entry_point", "priority": 1,
         "points": [[0.1, 0.5], [0.4, 0.5], [0.4, 1.0], [0.1, 1.0]]}


async def _camera_ready(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await wait_for(hass, lambda: "front_door" in entry.runtime_data.cameras, "camera found")


async def _ws(ws: Any, msg: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json_auto_id(msg)
    response: dict[str, Any] = await ws.receive_json()
    return response


async def test_get_set_round_trip_reaches_options_flow_and_sidecar(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    await _camera_ready(hass, init_integration)
    ws = await hass_ws_client(hass)
    ids = {"entry_id": init_integration.entry_id, "camera_id": "front_door"}

    coordinator = init_integration.runtime_data
    got = await _ws(ws, {"type": "secmon/zones/get", **ids})
    assert got["success"], got
    result = got["result"]
    assert result["zones"] == [] and result["kinds"] == list(ZONE_KINDS)
    assert result["camera_name"] == "Front Door" and result["can_edit"] is True
    assert result["entity_id"] == "camera.front_door"
    assert result["max_zones"] == MAX_ZONES

    saved = await _ws(ws, {"type": "secmon/zones/set", **ids,
                           "zones": [PORCH, {**TRIANGLE, "name": "  Gate "}]})
    assert saved["success"], saved
    # Answered once the reload that carries the zones to the sidecar is done.
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data is not coordinator
    await hass.async_block_till_done()
    stored = init_integration.options[CONF_CAMERA_ZONES]["front_door"]
    assert [z["name"] for z in stored] == ["Porch", "Gate"]
    # Exactly what the options' text field reads back (coordinates as the text keeps them).
    assert stored == parse_zones(format_zones(stored))
    assert stored[1]["points"] == [[0.1, 0.2], [0.5, 0.9], [0.123457, 1.0]]

    got = await _ws(ws, {"type": "secmon/zones/get", **ids})
    assert got["result"]["zones"] == stored

    # The reload sent the zones to the sidecar and made their occupancy sensors.
    coordinator = init_integration.runtime_data
    await wait_for(hass, lambda: coordinator.stream.config.camera_zones_set, "zones sent")
    (zones,) = coordinator.stream.config.camera_zones
    assert zones.camera_id == "front_door" and [z.name for z in zones.zones] == ["Porch", "Gate"]
    assert hass.states.get("binary_sensor.front_door_gate_occupancy") is not None

    # The options flow's zones field shows them as text, and keeps them when left as it is.
    flow = await hass.config_entries.options.async_init(init_integration.entry_id)
    flow = await hass.config_entries.options.async_configure(flow["flow_id"], {})
    assert flow["step_id"] == "context"
    suggested = {
        str(key): key.description["suggested_value"]
        for key in flow["data_schema"].schema
        if str(key) == "Front Door zones"
    }
    assert suggested == {"Front Door zones": format_zones(stored)}
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"Front Door zones": suggested["Front Door zones"]}
    )
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options[CONF_CAMERA_ZONES]["front_door"] == stored

    # An empty list removes the camera's zones.
    cleared = await _ws(ws, {"type": "secmon/zones/set", **ids, "zones": []})
    assert cleared["success"], cleared
    await hass.async_block_till_done()
    assert "front_door" not in init_integration.options[CONF_CAMERA_ZONES]


@pytest.mark.parametrize(
    ("zones", "reason"),
    [
        ([{**PORCH, "points": [[0.1, 0.1], [0.2, 0.2]]}], "3 to"),
        ([{**PORCH, "points": [[0.1, 0.1], [0.2, 1.2], [0.3, 0.3]]}], "outside the picture"),
        ([{**PORCH, "points": [[0.1, 0.1], [0.2], [0.3, 0.3]]}], "not a pair"),
        ([{**PORCH, "kind": "moat"}], "kind must be one of"),
        ([{**PORCH, "name": " "}], "no name"),
        ([{**PORCH, "name": "a | b"}], "may not contain"),
        # A line separator the text field would split the zone's line at.
        ([{**PORCH, "name": "a\u2028b"}], "does not read"),
        ([{**PORCH, "priority": "high"}], "priority"),
        ([PORCH, {**TRIANGLE, "name": "Porch"}], "same name"),
        ([{**PORCH, "name": f"Z{n}"} for n in range(MAX_ZONES + 1)], f"at most {MAX_ZONES}"),
    ],
)
async def test_bad_zones_are_refused_with_a_translated_reason(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    zones: list[dict[str, Any]],
    reason: str,
) -> None:
    await _camera_ready(hass, init_integration)
    ws = await hass_ws_client(hass)
    response = await _ws(ws, {"type": "secmon/zones/set", "entry_id": init_integration.entry_id,
                              "camera_id": "front_door", "zones": zones})
    assert not response["success"]
    error = response["error"]
    assert error["code"] == "zones_invalid" and reason in error["message"]
    assert error["translation_key"] == "zones_rejected"
    assert error["translation_placeholders"]["reason"] == error["message"]
    assert CONF_CAMERA_ZONES not in init_integration.options


async def test_unknown_camera_and_entry_are_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    await _camera_ready(hass, init_integration)
    ws = await hass_ws_client(hass)
    for extra in ({"type": "secmon/zones/get"}, {"type": "secmon/zones/set", "zones": [PORCH]}):
        response = await _ws(ws, {**extra, "entry_id": init_integration.entry_id,
                                  "camera_id": "garage"})
        assert not response["success"]
        assert response["error"]["code"] == "not_found"
        assert response["error"]["translation_key"] == "zones_unknown_camera"
        assert response["error"]["translation_placeholders"] == {"camera_id": "garage"}
    response = await _ws(ws, {"type": "secmon/zones/get", "entry_id": "nope",
                              "camera_id": "front_door"})
    assert response["error"]["translation_key"] == "entry_not_loaded"
    assert CONF_CAMERA_ZONES not in init_integration.options


async def test_non_admin_reads_but_may_not_set(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
) -> None:
    await _camera_ready(hass, init_integration)
    hass.config_entries.async_update_entry(
        init_integration, options={**init_integration.options,
                                   CONF_CAMERA_ZONES: {"front_door": [PORCH]}}
    )
    await hass.async_block_till_done()
    await _camera_ready(hass, init_integration)
    ws = await hass_ws_client(hass, hass_read_only_access_token)
    ids = {"entry_id": init_integration.entry_id, "camera_id": "front_door"}
    got = await _ws(ws, {"type": "secmon/zones/get", **ids})
    assert got["success"] and got["result"]["can_edit"] is False
    assert got["result"]["zones"] == [PORCH]
    refused = await _ws(ws, {"type": "secmon/zones/set", **ids, "zones": []})
    assert not refused["success"] and refused["error"]["code"] == "unauthorized"
    assert init_integration.options[CONF_CAMERA_ZONES] == {"front_door": [PORCH]}


async def test_zones_card_module_is_served_and_registered_next_to_the_timeline(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, hass_client: ClientSessionGenerator
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    urls = hass.data[DATA_EXTRA_MODULE_URL].urls
    for module in (CARD_URL, ZONES_CARD_URL):
        assert len([url for url in urls if url.startswith(f"{module}?v=")]) == 1
    [zones_url] = [url for url in urls if url.startswith(f"{ZONES_CARD_URL}?v=")]
    response = await (await hass_client()).get(zones_url)
    assert response.status == 200
    body = await response.text()
    assert 'customElements.define("secmon-zones-card"' in body
    assert "getConfigElement" in body and "secmon/zones/set" in body


async def test_the_editor_gets_the_picture_without_the_saved_outlines(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The camera's picture outlines its saved zones; the editor's picture is the same frame
    without them, for signed-in users only."""
    await _camera_ready(hass, init_integration)
    ws = await hass_ws_client(hass)
    ids = {"entry_id": init_integration.entry_id, "camera_id": "front_door"}
    saved = await _ws(ws, {"type": "secmon/zones/set", **ids, "zones": [PORCH]})
    assert saved["success"], saved
    await hass.async_block_till_done()
    coordinator = init_integration.runtime_data
    await _camera_ready(hass, init_integration)
    camera = coordinator.cameras["front_door"]
    path = (await _ws(ws, {"type": "secmon/zones/get", **ids}))["result"]["plain_picture_path"]
    client = await hass_client()
    # Before the camera's first frame: the camera entity's placeholder.
    camera.raw_image = camera.frame_id = None
    response = await client.get(path)
    assert response.status == 200
    assert await response.read() == await camera_image(hass, "camera.front_door")
    grey = io.BytesIO()
    Image.new("RGB", (400, 300), (128, 128, 128)).save(grey, format="JPEG")
    camera.raw_image, camera.frame_id, camera.boxes = grey.getvalue(), "grey", []

    # On the porch's top edge, at (0.25, 0.5) of the picture.
    edge = (100, 150)
    with Image.open(io.BytesIO(await camera_image(hass, "camera.front_door"))) as outlined:
        pixel = outlined.convert("RGB").getpixel(edge)
        assert pixel[2] - pixel[0] > 60, pixel
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await response.read())) as plain:
        assert plain.size == (400, 300)
        pixel = plain.convert("RGB").getpixel(edge)
        assert abs(pixel[2] - pixel[0]) < 20, pixel
    assert (await (await hass_client_no_auth()).get(path)).status == 401
    entry_id = init_integration.entry_id
    for gone in (f"/api/secmon/zones/{entry_id}/garage/picture", "/api/secmon/zones/x/y/picture"):
        assert (await client.get(gone)).status == 404
