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

import av
import pytest
from homeassistant.components import media_source
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.secmon.const import EVENT_SECURITY, EVENT_SECURITY_UPDATED
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.storage.event_media import CLIP_NAME, SNAPSHOT_NAME, THUMBNAIL_NAME

from .clips import write_test_clip
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


async def test_a_closed_event_gets_a_playable_clip_of_its_frames(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    tmp_path: Path,
) -> None:
    """The batch verdict of an event with three frames (one gone) gets an H.264 MP4 of the two
    left, detections drawn, linked from the bus event and served at a signed URL; a fast-path
    verdict makes none."""
    assert await async_setup_component(hass, "media_source", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    announced: list[Event] = []

    @callback
    def record(event: Event) -> None:
        announced.append(event)

    hass.bus.async_listen(EVENT_SECURITY, record)
    hass.bus.async_listen(EVENT_SECURITY_UPDATED, record)

    def frames() -> None:
        with coordinator.database.connection() as db:
            for n in range(2):
                path = tmp_path / f"f{n}.jpg"
                path.write_bytes(image_bytes(n, size=(640, 480)))
                db.execute(
                    "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at)"
                    " VALUES (?, ?, ?, ?)",
                    (f"f{n}", "front_door", str(path), time.time()),
                )
                result = secmon_pb2.FrameResult(
                    frame_id=f"f{n}",
                    detections=[
                        secmon_pb2.Detection(
                            label="person",
                            confidence=0.8,
                            box=secmon_pb2.Box(x_min=50, y_min=50, x_max=300, y_max=400),
                        )
                    ],
                )
                db.execute(
                    "INSERT INTO results (frame_id, camera_id, captured_at, stored_at, result)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (f"f{n}", "front_door", time.time(), time.time(), result.SerializeToString()),
                )

    await hass.async_add_executor_job(frames)
    fast = _verdict("ev", "f0")
    fast.verdict_id, fast.fast_path = "ev:fast", True
    assert await coordinator.async_on_verdict(fast)
    final = _verdict("ev", "f0")
    final.frame_ids[:] = ["f0", "gone", "f1"]
    assert await coordinator.async_on_verdict(final)
    await hass.async_block_till_done()

    by_verdict = {e.data["verdict_id"]: e.data for e in announced}
    assert "clip_url" not in by_verdict["ev:fast"]
    anonymous = await hass_client_no_auth()
    response = await anonymous.get(by_verdict["ev:final"]["clip_url"])
    assert response.status == 200
    assert response.content_type == "video/mp4"
    data = await response.read()
    assert (coordinator.media.folder("ev") / CLIP_NAME).read_bytes() == data

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_image() for f in container.decode(stream)]
    assert len(decoded) == 2
    assert decoded[0].size == (640, 480)
    # The box (x 50..300) is drawn: its outline differs from the frame without it.
    plain = Image.open(tmp_path / "f0.jpg").convert("RGB")
    assert (
        max(
            abs(a - b)
            for a, b in zip(decoded[0].getpixel((50, 200)), plain.getpixel((50, 200)), strict=True)
        )
        > 60
    )

    # The camera's event entity, which announced the event with its fast-path verdict, links
    # the clip the batch verdict brought (the event itself is not announced again).
    assert [e.event_type for e in announced].count(EVENT_SECURITY) == 1
    entity = hass.states.get(by_verdict["ev:final"]["entity_id"])
    assert entity is not None
    assert entity.attributes["event_id"] == "ev"
    assert entity.attributes["clip_url"] == by_verdict["ev:final"]["clip_url"]
    assert entity.attributes["thumbnail_url"] == by_verdict["ev:final"]["thumbnail_url"]

    client = await hass_client()
    entry_id = mock_config_entry.entry_id
    assert (await client.get(f"/api/secmon/events/{entry_id}/ev%3Afinal/clip")).status == 200
    assert (await anonymous.get(f"/api/secmon/events/{entry_id}/ev%3Afinal/clip")).status == 401
    assert (await client.get(f"/api/secmon/events/{entry_id}/nothing/clip")).status == 404

    # The timeline's websocket API links the clip of the event that has one, signed.
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/list"})
    (listed,) = (await ws.receive_json())["result"]["events"]
    assert listed["event_id"] == "ev"
    response = await anonymous.get(listed["clip_url"])
    assert response.status == 200
    assert await response.read() == data

    # The media browser lists the clip with the event's pictures and plays it.
    day = dt_util.as_local(dt_util.utcnow()).date().isoformat()
    browsed = await media_source.async_browse_media(
        hass, f"media-source://secmon/{entry_id}/front_door/{day}/ev:final"
    )
    (clip,) = [c for c in browsed.children if c.title == "Clip"]
    assert clip.can_play and clip.media_content_type == "video/mp4"
    played = await media_source.async_resolve_media(hass, clip.media_content_id, None)
    assert played.mime_type == "video/mp4"
    response = await client.get(played.url)
    assert response.status == 200
    assert await response.read() == data


async def test_an_event_from_an_uploaded_clip_gets_the_clips_own_segment(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """An event whose frames were sampled from one uploaded video gets that video's segment
    (a second before its first frame to a second after its last, every frame of it), not a
    slide show of its samples; an event mixing a video's frame with a picture gets the slide
    show."""
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    announced: list[Event] = []

    @callback
    def record(event: Event) -> None:
        announced.append(event)

    hass.bus.async_listen(EVENT_SECURITY, record)
    upload = tmp_path / "alarm.mkv"
    # 6 s at 10 frames/s; frame i is a flat grey of i * 20 mod 256.
    write_test_clip(upload, frames=60, fps=10, codec="mpeg4", size=(160, 120))

    def frames() -> None:
        picture = tmp_path / "still.jpg"
        picture.write_bytes(image_bytes(1, size=(160, 120)))
        with coordinator.database.connection() as db:
            for frame_id, path, offset in (
                ("c2", upload, 2.0),
                ("c3", upload, 3.0),
                ("still", picture, None),
            ):
                db.execute(
                    "INSERT INTO frame_paths (frame_id, camera_id, path, stored_at, clip_offset)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (frame_id, "front_door", str(path), time.time(), offset),
                )

    await hass.async_add_executor_job(frames)
    from_video = _verdict("video", "c2")
    from_video.frame_ids[:] = ["c2", "c3"]
    assert await coordinator.async_on_verdict(from_video)
    mixed = _verdict("mixed", "c2")
    mixed.frame_ids[:] = ["c2", "still"]
    assert await coordinator.async_on_verdict(mixed)
    await hass.async_block_till_done()
    by_event = {e.data["event_id"]: e.data for e in announced}

    anonymous = await hass_client_no_auth()
    response = await anonymous.get(by_event["video"]["clip_url"])
    assert response.status == 200
    with av.open(io.BytesIO(await response.read())) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [(float(f.time), f.to_image()) for f in container.decode(stream)]
    # Offsets 1.0 to 4.0 s of the upload: 31 frames, a tenth of a second apart, in real time.
    assert len(decoded) == 31
    assert decoded[-1][0] - decoded[0][0] == pytest.approx(3.0, abs=0.05)
    for n, (_, image) in enumerate(decoded):
        level = sum(image.convert("L").resize((4, 3)).getdata()) / 12
        assert abs(level - ((10 + n) * 20) % 256) < 16, n

    response = await anonymous.get(by_event["mixed"]["clip_url"])
    with av.open(io.BytesIO(await response.read())) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2
