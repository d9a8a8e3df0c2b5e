"""Each event's thumbnail: drawn when its verdict arrives, stored next to its snapshot in the
entry's media folder, in the bus event and the websocket payload, served at an authenticated URL.

Verdicts go in the way the sidecar's do (`async_on_verdict`); the snapshot frame is a real file
where the frame queue keeps analysed frames' paths.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from urllib.parse import urlsplit

from homeassistant.core import Event, HomeAssistant, callback
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.secmon.const import EVENT_SECURITY
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.storage.event_media import SNAPSHOT_NAME, THUMBNAIL_NAME

from .helpers import image_bytes


def _verdict(event: str, snapshot: str) -> secmon_pb2.Verdict:
    message = secmon_pb2.Verdict(
        verdict_id=f"{event}:final",
        event_id=event,
        camera_id="front_door",
        risk_score=50,
        summary="A person",
        frame_ids=[snapshot] if snapshot else [],
        snapshot_frame_id=snapshot,
        snapshot_detections=[
            secmon_pb2.Detection(
                label="person",
                confidence=0.9,
                box=secmon_pb2.Box(x_min=100, y_min=100, x_max=400, y_max=460),
            )
        ],
    )
    message.created_at.FromSeconds(int(time.time()))
    return message


async def _frame_file(hass: HomeAssistant, entry: MockConfigEntry, path: Path, frame: str) -> None:
    def insert() -> None:
        path.write_bytes(image_bytes(7, size=(640, 480)))
        with entry.runtime_data.database.connection() as db:
            db.execute(
                "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at)"
                " VALUES (?, ?, ?, ?)",
                (frame, "front_door", str(path), time.time()),
            )

    await hass.async_add_executor_job(insert)


async def test_every_event_with_a_picture_gets_a_thumbnail(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    announced: list[Event] = []

    @callback
    def record(event: Event) -> None:
        announced.append(event)

    hass.bus.async_listen(EVENT_SECURITY, record)
    await _frame_file(hass, mock_config_entry, tmp_path / "frame.jpg", "frame-a")
    assert await coordinator.async_on_verdict(_verdict("pic", "frame-a"))
    assert await coordinator.async_on_verdict(_verdict("nopic", ""))
    await hass.async_block_till_done()

    # Stored next to the full snapshot, in the event's own folder.
    folder = coordinator.media.folder("pic")
    assert folder.parent.parent == coordinator.database.path.with_suffix("")
    snapshot = Image.open(folder / SNAPSHOT_NAME)
    assert snapshot.size == (640, 480)
    thumbnail = (folder / THUMBNAIL_NAME).read_bytes()
    image = Image.open(io.BytesIO(thumbnail))
    assert image.size == (320, 240)
    # The box is drawn at the thumbnail's scale: its outline (x 50..200) differs from the
    # picture shrunk without boxes.
    plain = Image.open(tmp_path / "frame.jpg").convert("RGB").resize((320, 240))
    drawn = image.convert("RGB")
    assert (
        max(
            abs(a - b)
            for a, b in zip(drawn.getpixel((50, 150)), plain.getpixel((50, 150)), strict=True)
        )
        > 60
    )
    assert not coordinator.media.folder("nopic").exists()

    by_event = {e.data["event_id"]: e.data for e in announced}
    assert "thumbnail_url" not in by_event["nopic"]
    anonymous = await hass_client_no_auth()
    response = await anonymous.get(by_event["pic"]["thumbnail_url"])
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert await response.read() == thumbnail
    assert (await anonymous.get(urlsplit(by_event["pic"]["thumbnail_url"]).path)).status == 401

    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/list"})
    events = {e["event_id"]: e for e in (await ws.receive_json())["result"]["events"]}
    assert events["nopic"]["thumbnail_url"] is None
    response = await anonymous.get(events["pic"]["thumbnail_url"])
    assert await response.read() == thumbnail

    client = await hass_client()
    entry_id = mock_config_entry.entry_id
    for path in (
        f"/api/secmon/events/{entry_id}/nopic%3Afinal/thumbnail",
        f"/api/secmon/events/{entry_id}/nothing/thumbnail",
        "/api/secmon/events/no-such-entry/pic%3Afinal/thumbnail",
    ):
        assert (await client.get(path)).status == 404, path
