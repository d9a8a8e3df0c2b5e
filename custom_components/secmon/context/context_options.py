"""The options' "context" step: what the AI may know about the home (an alarm panel, who is home,
a vacation switch) and the owner's note per camera. Only the chosen entities' states are sent to
the sidecar (home_state.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    TextSelector,
    TextSelectorConfig,
)

from ..const import (
    CAMERA_NOTE_MAX_CHARS,
    CONF_ALARM_ENTITY,
    CONF_CAMERA_NOTES,
    CONF_CAMERA_ZONES,
    CONF_PRESENCE_ENTITIES,
    CONF_VACATION_ENTITY,
)
from .zones_options import format_zones, parse_zones

_ENTITY_KEYS = (CONF_ALARM_ENTITY, CONF_PRESENCE_ENTITIES, CONF_VACATION_ENTITY)
ZONES_SUFFIX = " zones"


def zones_field(name: str) -> str:
    """The form field of a camera's zones."""
    return name + ZONES_SUFFIX


def context_schema(options: Mapping[str, Any], cameras: Mapping[str, str]) -> vol.Schema:
    """The step's form; `cameras` maps camera id -> name (one note field per camera, labelled by
    its name)."""
    notes: Mapping[str, str] = options.get(CONF_CAMERA_NOTES) or {}
    zones: Mapping[str, Any] = options.get(CONF_CAMERA_ZONES) or {}
    fields: dict[Any, Any] = {
        vol.Optional(
            CONF_ALARM_ENTITY, description={"suggested_value": options.get(CONF_ALARM_ENTITY)}
        ): EntitySelector(EntitySelectorConfig(domain="alarm_control_panel")),
        vol.Optional(
            CONF_PRESENCE_ENTITIES,
            default=[],
            description={"suggested_value": options.get(CONF_PRESENCE_ENTITIES, [])},
        ): EntitySelector(
            EntitySelectorConfig(domain=["person", "device_tracker", "zone"], multiple=True)
        ),
        vol.Optional(
            CONF_VACATION_ENTITY, description={"suggested_value": options.get(CONF_VACATION_ENTITY)}
        ): EntitySelector(EntitySelectorConfig(domain="input_boolean")),
    }
    for camera_id, name in sorted(cameras.items(), key=lambda item: item[1]):
        if name in _ENTITY_KEYS:
            continue
        fields[vol.Optional(name, description={"suggested_value": notes.get(camera_id, "")})] = (
            TextSelector(TextSelectorConfig(multiline=True))
        )
        fields[
            vol.Optional(
                zones_field(name),
                description={"suggested_value": format_zones(zones.get(camera_id, []))},
            )
        ] = TextSelector(TextSelectorConfig(multiline=True))
    return vol.Schema(fields)


def note_errors(user_input: Mapping[str, Any], cameras: Mapping[str, str]) -> dict[str, str]:
    """Notes that are too long and zones that do not read, by form field."""
    errors = {
        name: "note_too_long"
        for name in cameras.values()
        if len(str(user_input.get(name) or "").strip()) > CAMERA_NOTE_MAX_CHARS
    }
    for name in cameras.values():
        try:
            parse_zones(str(user_input.get(zones_field(name)) or ""))
        except ValueError:
            errors[zones_field(name)] = "zones_invalid"
    return errors


def context_options(user_input: Mapping[str, Any], cameras: Mapping[str, str]) -> dict[str, Any]:
    """The options the step stores, from its form's input."""
    by_name = {name: camera_id for camera_id, name in cameras.items()}
    notes = {
        by_name[name]: str(text).strip()
        for name, text in user_input.items()
        if name in by_name and name not in _ENTITY_KEYS and str(text).strip()
    }
    return {
        CONF_ALARM_ENTITY: user_input.get(CONF_ALARM_ENTITY) or None,
        CONF_PRESENCE_ENTITIES: list(user_input.get(CONF_PRESENCE_ENTITIES) or []),
        CONF_VACATION_ENTITY: user_input.get(CONF_VACATION_ENTITY) or None,
        CONF_CAMERA_NOTES: notes,
        CONF_CAMERA_ZONES: {
            camera_id: zones
            for camera_id, name in cameras.items()
            if (zones := parse_zones(str(user_input.get(zones_field(name)) or "")))
        },
    }
