"""End to end through a real sidecar: the home state chosen in the options (alarm, people, vacation)
and the owner's camera note reach the prompt of the next batch; a change of the home in HA reaches
the batch after it; diagnostics show the prompt with its data block redacted."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import (
    CONF_ALARM_ENTITY,
    CONF_BATCH_IDLE,
    CONF_CAMERA_NOTES,
    CONF_CAMERA_ZONES,
    CONF_PRESENCE_ENTITIES,
    CONF_THRESHOLD,
    CONF_VACATION_ENTITY,
)
from sidecar.storage.database import STATE_FILE
from tests.integration.helpers import wait_for
from tests.integration.sidecar_process import SidecarProcess

from .test_verdicts_e2e import CAMERA, bus_events, drop, set_up, stored_verdicts

__all__ = ["bus_events"]  # the fixture, used by name

pytestmark = pytest.mark.timeout(600)

NOTE = "Faces the street; the mail carrier comes around 11:00; our cat is grey"


async def test_home_state_and_note_reach_the_next_prompt(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    hass.states.async_set("alarm_control_panel.house", "disarmed")
    hass.states.async_set("person.anna", "home")
    hass.states.async_set("person.ben", "home")
    hass.states.async_set("input_boolean.vacation", "off")
    hass.states.async_set("person.not_chosen", "home")
    entry = await set_up(hass, sidecar, camera_root, window=300.0, idle=3.0)
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_ALARM_ENTITY: "alarm_control_panel.house",
            CONF_PRESENCE_ENTITIES: ["person.anna", "person.ben"],
            CONF_VACATION_ENTITY: "input_boolean.vacation",
            CONF_CAMERA_NOTES: {CAMERA: NOTE},
        },
    )  # reloads the entry: a new Hello with the notes, then the home state
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected again")
    await wait_for(hass, lambda: coordinator.stream.home_states_sent >= 1, "home state sent")

    drop(camera_root / "Front Door", [701])
    (first,) = await stored_verdicts(hass, entry, 1, bus_events)
    prompt = first.record.message.prompt
    assert "- Alarm: disarmed" in prompt
    assert "- 2 of 2 tracked people are home" in prompt
    assert "- Vacation mode: off" in prompt
    assert f"owner_note: {NOTE}" in prompt

    # Everyone leaves and the alarm is armed: the next batch's prompt says so.
    sent = coordinator.stream.home_states_sent
    hass.states.async_set("alarm_control_panel.house", "armed_away")
    hass.states.async_set("person.anna", "not_home")
    hass.states.async_set("person.ben", "not_home")
    await wait_for(hass, lambda: coordinator.stream.home_states_sent >= sent + 3, "sent")
    drop(camera_root / "Front Door", [702])
    second = (await stored_verdicts(hass, entry, 2, bus_events))[-1]
    prompt = second.record.message.prompt
    assert "- Alarm: armed_away" in prompt
    assert "- Nobody is home (2 people tracked)" in prompt

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    shown = {v["verdict_id"]: v for v in diagnostics["verdicts"]["recent"]}
    redacted = shown[second.record.verdict_id]["prompt"]
    assert "- Alarm: armed_away" in redacted and "- Nobody is home" in redacted
    assert "owner_note: **REDACTED**" in redacted and "camera_name: **REDACTED**" in redacted
    assert "cat is grey" not in str(diagnostics["verdicts"])
    assert "not_chosen" not in prompt


async def test_feedback_reaches_the_next_similar_prompt(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    entry = await set_up(hass, sidecar, camera_root, window=300.0, idle=3.0)
    coordinator = entry.runtime_data
    drop(camera_root / "Front Door", [711])
    (first,) = await stored_verdicts(hass, entry, 1, bus_events)
    assert "How the owner judged" not in first.record.message.prompt

    await hass.services.async_call(
        "secmon",
        "feedback",
        {"event_id": first.record.event_id, "verdict": "false_alarm", "note": "our grey cat"},
        blocking=True,
    )
    await wait_for(hass, lambda: coordinator.stream.feedback_sent >= 1, "feedback sent")
    level = hass.states.get(f"sensor.{CAMERA}_risk_level")
    assert level is not None and level.attributes["feedback"] == {"false_alarm": 1}
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["cameras"][CAMERA]["feedback"] == {"false_alarm": 1}

    drop(camera_root / "Front Door", [712])
    second = (await stored_verdicts(hass, entry, 2, bus_events))[-1]
    prompt = second.record.message.prompt
    assert "How the owner judged similar past events" in prompt
    assert "this camera" in prompt and "the owner marked it a false alarm" in prompt
    assert "feedback_note_1: our grey cat" in prompt

    # A new session (the sidecar restarted with its state) gets the judgement again, harmlessly.
    sent = coordinator.stream.feedback_sent
    sidecar.stop()
    sidecar.start()
    await wait_for(hass, lambda: coordinator.stream.feedback_sent > sent, "feedback sent again")


async def test_zones_tag_detections_and_switch_occupancy(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    """Zones typed into the options flow tag the detections, switch the occupancy sensors and
    reach the prompt; the event (entity and bus event) carries the zone and the anomaly figure of
    the sidecar's baseline (a camera it has known for 30 days that never had this label at this
    hour: 1.0)."""
    sidecar.stop()
    with closing(sqlite3.connect(sidecar.workdir / "data" / STATE_FILE)) as state, state:
        state.execute(
            "INSERT INTO activity_cameras (camera_id, first_seen) VALUES (?, ?)",
            (CAMERA, time.time() - 30 * 86400),
        )
    sidecar.start()
    entry = await set_up(hass, sidecar, camera_root, window=300.0, idle=3.0)
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: CAMERA in coordinator.cameras, "camera found")

    result = await hass.config_entries.options.async_init(entry.entry_id)
    # The form's lowest threshold still lets the tiny random detector's (~0.1) through.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_THRESHOLD: 0.01}
    )
    assert result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "Front Door zones": "Whole view | yard | 1 | 0,0 1,0 1,1 0,1\n"
            "Corner | entry_point | 5 | 0,0 0.001,0 0.001,0.001"
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The first step kept the test's tuning.
    assert entry.options[CONF_BATCH_IDLE] == 3.0
    assert [z["name"] for z in entry.options[CONF_CAMERA_ZONES][CAMERA]] == ["Whole view", "Corner"]
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected again")
    assert hass.states.get("binary_sensor.front_door_whole_view_occupancy").state == "off"
    assert hass.states.get("binary_sensor.front_door_corner_occupancy").state == "off"

    drop(camera_root / "Front Door", [721])
    await wait_for(
        hass,
        lambda: hass.states.get("binary_sensor.front_door_whole_view_occupancy").state == "on",
        "zone occupied",
    )
    assert hass.states.get("binary_sensor.front_door_corner_occupancy").state == "off"
    (verdict,) = await stored_verdicts(hass, entry, 1, bus_events)
    assert list(verdict.record.message.zones) == ["Whole view"]
    assert "In the zone in data field zone_1 (yard, priority 1)" in verdict.record.message.prompt
    assert verdict.record.message.anomaly == 1.0
    assert verdict.record.message.baseline_days == pytest.approx(30, abs=0.2)

    (announced,) = [e for e in bus_events if e.data["event_id"] == verdict.record.event_id]
    assert (announced.data["zones"], announced.data["anomaly"]) == (["Whole view"], 1.0)
    assert announced.data["baseline_days"] == pytest.approx(30, abs=0.2)
    event = hass.states.get(f"event.{CAMERA}_security_event")
    assert event is not None
    assert (event.attributes["zones"], event.attributes["anomaly"]) == (["Whole view"], 1.0)
