"""Actionable notifications: an alert carries its event's own signed snapshot URL, served by the
integration; the companion app's "False alarm" and "Snooze 1 h" actions reach feedback and
snooze."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import quote

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import DOMAIN, EVENT_ALERT
from custom_components.secmon.ingest.ingestor import frame_id_for

from .helpers import image_bytes, wait_for, write_image
from .test_alerts import ARMED, CAMERA, COOLDOWN, _setup, verdict


async def test_snapshot_url_and_actions(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    hass_client_no_auth: ClientSessionGenerator,
    hass_client: ClientSessionGenerator,
) -> None:
    entry: MockConfigEntry = await _setup(hass, camera_root)
    # The sidecar is away: the frame stays queued, and its image in the database.
    data = image_bytes(7)
    frame_id = frame_id_for(CAMERA, hashlib.sha256(data).hexdigest())
    write_image(camera_root / "Front Door" / "7.jpg", data)
    queue = entry.runtime_data.queue
    await wait_for(hass, lambda: queue.frame_image(frame_id) is not None, "queued frame", 60)

    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    event_id = await verdict(hass, entry, "high", snapshot_frame_id=frame_id)
    assert len(alerts) == 1
    url = alerts[0].data["snapshot_url"]
    verdict_id = quote(alerts[0].data["verdict_id"], safe="")
    assert url.startswith(f"/api/secmon/events/{entry.entry_id}/{verdict_id}/snapshot?authSig=")
    state = hass.states.get(f"event.{CAMERA}_alert")
    assert state is not None
    assert state.attributes["snapshot_url"] == url

    client = await hass_client_no_auth()
    response = await client.get(url)
    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/jpeg"
    first_picture = await response.read()
    assert first_picture.startswith(b"\xff\xd8")
    unsigned = await client.get(url.split("?")[0])
    assert unsigned.status == HTTPStatus.UNAUTHORIZED
    # A later event of the camera, with a picture of its own, does not change what the older
    # URL shows; the later alert's URL shows the later picture.
    await hass.services.async_call(
        "number", "set_value", {"entity_id": COOLDOWN, "value": 0}, blocking=True
    )
    later_data = image_bytes(200)
    later_frame = frame_id_for(CAMERA, hashlib.sha256(later_data).hexdigest())
    write_image(camera_root / "Front Door" / "8.jpg", later_data)
    await wait_for(hass, lambda: queue.frame_image(later_frame) is not None, "later frame", 60)
    await verdict(hass, entry, "critical", snapshot_frame_id=later_frame)
    assert len(alerts) == 2
    later_url = alerts[-1].data["snapshot_url"]
    assert later_url != url
    later_picture = await (await client.get(later_url)).read()
    assert later_picture.startswith(b"\xff\xd8")
    assert later_picture != first_picture
    assert await (await client.get(url)).read() == first_picture
    await verdict(hass, entry, "critical")
    missing = alerts[-1].data["snapshot_url"]
    assert (await client.get(missing)).status == HTTPStatus.NOT_FOUND

    # "False alarm" on the notification.
    hass.bus.async_fire(
        "mobile_app_notification_action", {"action": f"SECMON_FALSE_ALARM:{event_id}"}
    )
    await hass.async_block_till_done()
    event = await hass.services.async_call(
        DOMAIN, "get_event", {"event_id": event_id}, blocking=True, return_response=True
    )
    assert event is not None
    assert event["feedback"]["verdict"] == "false_alarm"  # type: ignore[index]

    # "Snooze 1 h" on the notification.
    hass.bus.async_fire("mobile_app_notification_action", {"action": f"SECMON_SNOOZE_1H:{CAMERA}"})
    await hass.async_block_till_done()
    armed = hass.states.get(ARMED)
    assert armed is not None
    until = dt_util.parse_datetime(armed.attributes["snoozed_until"])
    assert until is not None
    assert timedelta(minutes=59) < until - dt_util.utcnow() <= timedelta(hours=1)
    # A false alarm for an event that is not stored changes nothing; unknown entries are 404.
    hass.bus.async_fire("mobile_app_notification_action", {"action": "SECMON_FALSE_ALARM:gone"})
    await hass.async_block_till_done()
    authenticated = await hass_client()
    for path in (f"{entry.entry_id}/gone", f"nope/{verdict_id}"):
        response = await authenticated.get(f"/api/secmon/events/{path}/snapshot")
        assert response.status == HTTPStatus.NOT_FOUND
    response = await authenticated.get(url.split("?")[0])
    assert response.status == HTTPStatus.OK
    # Other apps' actions are left alone.
    hass.bus.async_fire("mobile_app_notification_action", {"action": "SOMETHING_ELSE"})
    await hass.async_block_till_done()


async def test_snapshot_url_expires(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    hass_client_no_auth: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A notification's signed snapshot URL passes the view's auth for seven days (404 here: the
    verdict has no snapshot frame), then is refused."""
    entry: MockConfigEntry = await _setup(hass, camera_root)
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await verdict(hass, entry, "high")
    url = alerts[0].data["snapshot_url"]

    client = await hass_client_no_auth()
    freezer.tick(timedelta(days=6, hours=23))
    assert (await client.get(url)).status == HTTPStatus.NOT_FOUND
    freezer.tick(timedelta(hours=2))
    assert (await client.get(url)).status == HTTPStatus.UNAUTHORIZED
