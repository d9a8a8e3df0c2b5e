"""The timeline card's backend: `secmon/events/list` pages, `secmon/events/subscribe` pushes, each
event's snapshot and frames at authenticated URLs, and the card module served and registered.

Verdicts go in the way the sidecar's do (`async_on_verdict`: stored, then announced); pictures are
real files where the frame queue keeps analysed frames' paths.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.secmon.card import CARD_URL
from custom_components.secmon.link.proto import secmon_pb2

from .helpers import image_bytes


def _verdict(
    event: str,
    camera: str = "front_door",
    *,
    fast: bool = False,
    score: int = 40,
    frames: tuple[str, ...] = (),
    snapshot: str = "",
) -> secmon_pb2.Verdict:
    message = secmon_pb2.Verdict(
        verdict_id=f"{event}:{'fast' if fast else 'final'}",
        event_id=event,
        camera_id=camera,
        risk_score=score,
        summary=f"Summary of {event}",
        reasoning=f"Reasoning for {event}",
        fast_path=fast,
        frame_ids=list(frames),
        snapshot_frame_id=snapshot,
        labels=[secmon_pb2.LabelCount(label="person", count=2)],
        snapshot_detections=[
            secmon_pb2.Detection(
                label="person",
                confidence=0.9,
                box=secmon_pb2.Box(x_min=10, y_min=10, x_max=100, y_max=200),
            )
        ],
    )
    message.started_at.FromSeconds(int(time.time()))
    message.created_at.FromSeconds(int(time.time()) + (0 if fast else 1))
    return message


async def _frame_file(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path, frame: str
) -> bytes:
    """A stored frame whose image is a real file (as for a frame analysed a while ago)."""
    data = image_bytes(hash(frame) % 200)
    path = tmp_path / f"{frame}.jpg"
    path.write_bytes(data)

    def insert() -> None:
        with entry.runtime_data.database.connection() as db:
            db.execute(
                "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at)"
                " VALUES (?, ?, ?, ?)",
                (frame, "front_door", str(path), time.time()),
            )

    await hass.async_add_executor_job(insert)
    return data


async def test_list_pages_newest_first_with_pictures(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    camera_root: Path,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """Events come newest first in pages; a fast-path and a batch verdict are one event (the
    batch one); the camera filter holds; snapshot and frames load through signed URLs only."""
    (camera_root / "Garage").mkdir()
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    frame = await _frame_file(hass, mock_config_entry, tmp_path, "frame-a")
    for n in range(12):
        camera = "garage" if n % 3 == 0 else "front_door"
        assert await coordinator.async_on_verdict(_verdict(f"ev{n:02d}", camera, score=n * 8))
    assert await coordinator.async_on_verdict(
        _verdict("pic", fast=True, score=90, frames=("frame-a",), snapshot="frame-a")
    )
    assert await coordinator.async_on_verdict(
        _verdict("pic", score=70, frames=("frame-a", "gone"), snapshot="frame-a")
    )

    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/list", "limit": 5})
    first = (await ws.receive_json())["result"]
    assert [e["event_id"] for e in first["events"]] == ["pic", "ev11", "ev10", "ev09", "ev08"]
    pic = first["events"][0]
    assert pic["verdict_id"] == "pic:final"
    assert pic["risk_score"] == 70
    assert pic["risk_level"] == "high"
    assert pic["camera_name"] == "Front Door"
    assert pic["labels"] == {"person": 2}
    assert pic["reasoning"] == "Reasoning for pic"
    assert len(pic["frame_urls"]) == 2
    assert {c["name"] for c in first["cameras"]} == {"Front Door", "Garage"}
    assert first["next_before"] == first["events"][-1]["stored_at"]

    seen = [e["event_id"] for e in first["events"]]
    before = first["next_before"]
    while before is not None:
        await ws.send_json_auto_id({"type": "secmon/events/list", "limit": 5, "before": before})
        page = (await ws.receive_json())["result"]
        seen += [e["event_id"] for e in page["events"]]
        before = page["next_before"]
    assert seen == ["pic"] + [f"ev{n:02d}" for n in reversed(range(12))]

    await ws.send_json_auto_id({"type": "secmon/events/list", "cameras": ["garage"]})
    garage = (await ws.receive_json())["result"]
    assert [e["event_id"] for e in garage["events"]] == ["ev09", "ev06", "ev03", "ev00"]
    assert garage["next_before"] is None
    assert all(e["snapshot_url"] is None for e in garage["events"])

    await ws.send_json_auto_id({"type": "secmon/events/list", "limit": 0})
    assert not (await ws.receive_json())["success"]

    # The signed URLs load without a token; the same paths unsigned do not.
    anonymous = await hass_client_no_auth()
    response = await anonymous.get(pic["snapshot_url"])
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    snapshot = await response.read()
    assert snapshot != frame  # the detections are drawn on it
    assert Image.open(io.BytesIO(snapshot)).size == Image.open(io.BytesIO(frame)).size
    response = await anonymous.get(pic["frame_urls"][0])
    assert response.status == 200
    assert await response.read() == frame
    assert (await anonymous.get(urlsplit(pic["snapshot_url"]).path)).status == 401

    # Pictures that are not there are a 404, never an error.
    client = await hass_client()
    entry_id = mock_config_entry.entry_id
    assert (await client.get(urlsplit(pic["frame_urls"][1]).path)).status == 404
    for path in (
        f"/api/secmon/events/{entry_id}/pic%3Afinal/frames/7",
        f"/api/secmon/events/{entry_id}/pic%3Afinal/frames/x",
        f"/api/secmon/events/{entry_id}/nothing/snapshot",
        f"/api/secmon/events/{entry_id}/ev01%3Afinal/snapshot",
        "/api/secmon/events/no-such-entry/pic%3Afinal/snapshot",
    ):
        assert (await client.get(path)).status == 404, path


async def test_subscribe_pushes_new_and_updated_events(
    hass: HomeAssistant,
    camera_root: Path,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A subscriber gets each new event of its cameras as it is stored, then its update."""
    (camera_root / "Garage").mkdir()
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data

    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/subscribe", "cameras": ["front_door"]})
    subscribed = await ws.receive_json()
    assert subscribed["success"]

    assert await coordinator.async_on_verdict(_verdict("g1", "garage"))
    assert await coordinator.async_on_verdict(_verdict("f1", fast=True, score=50))
    message = await ws.receive_json()
    assert message["id"] == subscribed["id"]
    assert message["event"]["event"]["event_id"] == "f1"
    assert message["event"]["event"]["fast_path"] is True
    assert message["event"]["update"] is False

    assert await coordinator.async_on_verdict(_verdict("f1", score=20))
    message = await ws.receive_json()
    assert message["event"]["event"]["verdict_id"] == "f1:final"
    assert message["event"]["update"] is True

    await ws.send_json_auto_id({"type": "unsubscribe_events", "subscription": subscribed["id"]})
    assert (await ws.receive_json())["success"]
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("frontend_first", [True, False], ids=["frontend-first", "secmon-first"])
async def test_card_module_is_served_and_registered(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    frontend_first: bool,
) -> None:
    """Whichever of secmon and the frontend is set up first, the card's module is served and
    added to the modules every frontend loads (no dashboard resource to add by hand)."""
    if frontend_first:
        assert await async_setup_component(hass, "frontend", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    if not frontend_first:
        assert await async_setup_component(hass, "frontend", {})
        await hass.async_block_till_done()
    urls = hass.data[DATA_EXTRA_MODULE_URL].urls
    registered = [url for url in urls if url.startswith(f"{CARD_URL}?v=")]
    assert len(registered) == 1

    client = await hass_client()
    response = await client.get(registered[0])
    assert response.status == 200
    body = await response.text()
    assert 'customElements.define("secmon-timeline-card"' in body
    assert "getConfigElement" in body


async def test_timeline_and_get_event_show_the_same_verdict(
    hass: HomeAssistant,
    camera_root: Path,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Two batch verdicts of one event, the one stored last created first: the timeline and
    `secmon.get_event` both show the one stored last."""
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    first = _verdict("late", score=30)
    first.verdict_id = "late:a"
    second = _verdict("late", score=60)
    second.verdict_id = "late:b"
    second.created_at.FromSeconds(int(time.time()) - 60)
    assert await coordinator.async_on_verdict(first)
    assert await coordinator.async_on_verdict(second)

    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/list"})
    listed = (await ws.receive_json())["result"]["events"]
    assert [e["verdict_id"] for e in listed] == ["late:b"]
    response = await hass.services.async_call(
        "secmon", "get_event", {"event_id": "late"}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["verdict_id"] == "late:b"
    assert response["verdict_count"] == 2
