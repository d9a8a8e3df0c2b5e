"""The options' context step (alarm panel, who is home, vacation switch, a note per camera), what
it pushes to the sidecar, and the home state built from the chosen entities only."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ALARM_ENTITY,
    CONF_CAMERA_NOTES,
    CONF_CAMERA_ZONES,
    CONF_PRESENCE_ENTITIES,
    CONF_VACATION_ENTITY,
)
from custom_components.secmon.context.home_state import home_state_message
from custom_components.secmon.context.zones_options import format_zones, parse_zones
from custom_components.secmon.settings import SecmonSettings

from .helpers import wait_for

NOTE = "Faces the street; our cat is grey"


async def test_context_step_stores_entities_and_notes_and_pushes_them(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    coordinator = init_integration.runtime_data
    await wait_for(hass, lambda: "front_door" in coordinator.cameras, "camera found")
    hass.states.async_set("alarm_control_panel.house", "armed_night")
    hass.states.async_set("person.anna", "home")
    hass.states.async_set("device_tracker.phone", "not_home")

    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == {
        CONF_ALARM_ENTITY, CONF_PRESENCE_ENTITIES, CONF_VACATION_ENTITY, "Front Door",
        "Front Door zones",
    }

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"Front Door": "x" * 201, "Front Door zones": "Porch | moat | 1 | 0,0 1,0 1,1"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"Front Door": "note_too_long", "Front Door zones": "zones_invalid"}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_ALARM_ENTITY: "alarm_control_panel.house",
            CONF_PRESENCE_ENTITIES: ["person.anna", "device_tracker.phone"],
            "Front Door": f"  {NOTE}  ",
            "Front Door zones": "Porch | entry_point | 2 | 0.1,0.5 0.4,0.5 0.4,1 0.1,1\n",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    options = init_integration.options
    assert options[CONF_CAMERA_NOTES] == {"front_door": NOTE}
    assert options[CONF_ALARM_ENTITY] == "alarm_control_panel.house"
    assert options[CONF_VACATION_ENTITY] is None
    porch = {"name": "Porch", "kind": "entry_point", "priority": 2,
             "points": [[0.1, 0.5], [0.4, 0.5], [0.4, 1.0], [0.1, 1.0]]}
    assert options[CONF_CAMERA_ZONES] == {"front_door": [porch]}

    # Reloaded: the notes go with Hello, the home state after it and whenever it changes.
    coordinator = init_integration.runtime_data
    config = coordinator.stream.config
    assert config.camera_notes_set
    assert [(n.camera_id, n.note) for n in config.camera_notes] == [("front_door", NOTE)]
    assert config.camera_zones_set
    (zones,) = config.camera_zones
    assert zones.camera_id == "front_door" and [z.name for z in zones.zones] == ["Porch"]
    assert hass.states.get("binary_sensor.front_door_porch_occupancy") is not None
    await wait_for(hass, lambda: coordinator.stream.home_states_sent >= 1, "home state sent")
    state = coordinator.stream.home_state
    assert state is not None
    assert (state.alarm, state.people_home, state.people_tracked) == ("armed_night", 1, 2)
    assert state.people_known and not state.vacation_known
    hass.states.async_set("device_tracker.phone", "home")
    await wait_for(hass, lambda: coordinator.stream.home_states_sent >= 2, "change sent")
    assert coordinator.stream.home_state.people_home == 2
    # An entity that was not chosen changes nothing and is sent nowhere.
    hass.states.async_set("person.guest", "home")
    await hass.async_block_till_done()
    assert coordinator.stream.home_states_sent == 2


async def test_home_state_from_zone_count_vacation_and_unknown_states(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    hass.states.async_set("zone.home", "3")
    hass.states.async_set("person.anna", "unavailable")
    hass.states.async_set("input_boolean.vacation", "on")
    hass.states.async_set("alarm_control_panel.house", "unknown")
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            CONF_ALARM_ENTITY: "alarm_control_panel.house",
            CONF_PRESENCE_ENTITIES: ["zone.home", "person.anna"],
            CONF_VACATION_ENTITY: "input_boolean.vacation",
        },
    )
    settings = SecmonSettings.from_entry(mock_config_entry)
    assert settings.home_entities == (
        "alarm_control_panel.house", "zone.home", "person.anna", "input_boolean.vacation"
    )
    message = home_state_message(hass, settings)
    assert message.alarm == ""  # unknown: not reported
    assert message.people_known and message.people_home == 3 and message.people_tracked == 0
    assert message.vacation_known and message.vacation
    assert message.HasField("changed_at")
    nothing = home_state_message(hass, SecmonSettings.from_entry(MockConfigEntry(
        domain="secmon", data=mock_config_entry.data
    )))
    assert not nothing.people_known and not nothing.vacation_known and not nothing.alarm


def test_zones_read_and_write_back() -> None:
    text = (
        "Porch | entry_point | 2 | 0.1,0.5 0.4,0.5 0.4,1 0.1,1\n\n"
        "Drive | driveway | 0 | 0,0 1,0 1,1"
    )
    zones = parse_zones(text)
    assert [z["name"] for z in zones] == ["Porch", "Drive"]
    assert parse_zones(format_zones(zones)) == zones
    for bad in (
        "Porch | entry_point | 2 | 0,0 1,0",  # two points
        "Porch | entry_point | 2 | 0,0 1,0 1,1.5",  # outside the image
        "Porch | entry_point | high | 0,0 1,0 1,1",  # priority not a number
        "Porch | entry_point | 2",  # no points
        "Porch | moat | 1 | 0,0 1,0 1,1",  # not a kind
    ):
        with pytest.raises(ValueError, match="line 1 does not read"):
            parse_zones(bad)
    with pytest.raises(ValueError, match="two with one name"):
        parse_zones("A | yard | 1 | 0,0 1,0 1,1\nA | yard | 1 | 0,0 1,0 1,1")
