"""The home's state for the AI's context, from the entities chosen in the options only: the alarm
panel's state, how many of the chosen people / device trackers are home (or the home zone's
count), and the vacation switch. Sent to the sidecar as a `HomeState` whenever one changes."""

from __future__ import annotations

from datetime import datetime

from homeassistant.const import STATE_HOME, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State

from ..link.proto import secmon_pb2
from ..settings import SecmonSettings

_NO_STATE = {STATE_UNKNOWN, STATE_UNAVAILABLE}


def _known(hass: HomeAssistant, entity_id: str | None) -> State | None:
    state = hass.states.get(entity_id) if entity_id else None
    return state if state is not None and state.state not in _NO_STATE else None


def home_state_message(hass: HomeAssistant, settings: SecmonSettings) -> secmon_pb2.HomeState:
    """The chosen entities' states as the sidecar takes them."""
    message = secmon_pb2.HomeState()
    changed: list[datetime] = []
    if (alarm := _known(hass, settings.alarm_entity)) is not None:
        message.alarm = alarm.state
        changed.append(alarm.last_changed)
    home = tracked = 0
    counted = False
    for entity_id in settings.presence_entities:
        if (state := _known(hass, entity_id)) is None:
            continue
        changed.append(state.last_changed)
        if entity_id.startswith("zone."):  # a zone's state is how many people are in it
            try:
                home += int(float(state.state))
            except ValueError:
                continue
            counted = True
        else:
            tracked += 1
            home += state.state == STATE_HOME
    if tracked or counted:
        message.people_known = True
        message.people_home = home
        message.people_tracked = 0 if counted else tracked
    if (vacation := _known(hass, settings.vacation_entity)) is not None:
        message.vacation_known = True
        message.vacation = vacation.state == STATE_ON
        changed.append(vacation.last_changed)
    if changed:
        message.changed_at.FromDatetime(max(changed))
    return message
