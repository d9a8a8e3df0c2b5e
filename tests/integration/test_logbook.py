"""The real logbook, over the recorder, after a camera's frames and their verdict."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.secmon.const import EVENT_SECURITY
from custom_components.secmon.logbook import describe_verdict

from .test_verdicts import (  # noqa: F401 (fixtures)
    camera_id,
    camera_name,
    drop_frames,
    entry,
    sidecar,
    wait_for_verdicts,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_db_url: str, enable_custom_integrations: None) -> None:
    """The recorder's database is chosen before Home Assistant starts."""


async def test_one_line_per_verdict_and_none_per_frame(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    *,
    entry: MockConfigEntry,  # noqa: F811
    camera_root: Path,
    camera_name: str,  # noqa: F811
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Several frames and their verdict: the logbook has one line for the verdict and none for
    the frames (camera, objects, risk score, risk level, snapshot)."""
    assert await async_setup_component(hass, "logbook", {})
    assert await async_setup_component(hass, "history", {})
    await hass.async_block_till_done()
    start = dt_util.utcnow()
    cam = camera_id(camera_name)
    await drop_frames(hass, entry, camera_root / camera_name, [51, 52, 53, 54])
    (stored,) = await wait_for_verdicts(hass, entry, cam, 1)
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "logbook/get_events", "start_time": start.isoformat()})
    response = await client.receive_json()
    assert response["success"], response
    camera_entities = {
        entity.entity_id
        for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if entity.unique_id.startswith(f"{entry.entry_id}_{cam}_")
    }
    assert f"event.{cam}_security_event" in camera_entities
    lines = [
        line
        for line in response["result"]
        if line.get("entity_id") in camera_entities or line.get("name") == camera_name
    ]
    by_entity = Counter(str(line.get("entity_id")) for line in lines)
    # The frames reach the logbook only through the occupancy sensors (a person or a vehicle
    # coming and going, as a motion sensor's would): nothing for the camera, the object count or
    # the risk score.
    for entity_id in (f"camera.{cam}", f"sensor.{cam}_objects", f"sensor.{cam}_risk_score"):
        assert by_entity[entity_id] == 0, entity_id
    # The verdict: one line that says what happened, from secmon_event...
    described = [line for line in lines if line.get("message")]
    message = describe_verdict(EVENT_SECURITY, stored.record.attributes(is_update=False))
    assert [(line["entity_id"], line["message"]) for line in described] == [
        (f"event.{cam}_security_event", message["message"])
    ]
    # ...and the plain state lines Home Assistant writes for every non-numeric entity the verdict
    # changes (it offers integrations no way to keep those out; README says so), one each.
    verdict_entities = {
        f"event.{cam}_security_event",
        f"image.{cam}_event_snapshot",
        f"sensor.{cam}_risk_level",
        f"sensor.{cam}_description",
        f"event.{cam}_alert",  # when the verdict is an alert (verdicts/alerts.py)
    }
    state_lines = Counter(
        str(line["entity_id"])
        for line in lines
        if not line.get("message") and not str(line["entity_id"]).startswith("binary_sensor.")
    )
    assert set(state_lines) <= verdict_entities, state_lines
    assert max(state_lines.values()) == 1, state_lines

    # The camera's per-frame capture time stays out of the recorder.
    live = hass.states.get(f"camera.{cam}")
    assert live is not None and live.attributes["last_frame"] is not None
    await client.send_json_auto_id(
        {
            "type": "history/history_during_period",
            "start_time": start.isoformat(),
            "entity_ids": [f"camera.{cam}"],
            "minimal_response": False,
            "no_attributes": False,
            "significant_changes_only": False,
        }
    )
    history = await client.receive_json()
    assert history["success"], history
    recorded = history["result"][f"camera.{cam}"]
    assert recorded
    assert all("last_frame" not in state["a"] for state in recorded), recorded
