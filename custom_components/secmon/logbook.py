"""Logbook lines for verdicts, e.g. "Front Door: high risk (72) — Person at the door at night",
and for tampered cameras ("Porch: view looks covered (0.93)")."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_SECURITY, EVENT_SECURITY_UPDATED, EVENT_TAMPERED

SUMMARY_CHARS = 200


def describe_verdict(event_type: str, data: Mapping[str, Any]) -> dict[str, str | None]:
    """The logbook line of one `secmon_event` / `secmon_event_updated`."""
    level = data.get("risk_level", "unknown")
    score = data.get("risk_score", "?")
    summary = str(data.get("summary") or "").strip()
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "…"
    if event_type == EVENT_SECURITY_UPDATED:
        head = f"risk updated: {level} ({score})"
    elif data.get("is_update"):
        head = f"risk raised to {level} ({score})"
    else:
        head = f"{level} risk ({score})"
    if data.get("fast_path"):
        head += ", fast path"
    return {
        LOGBOOK_ENTRY_NAME: str(data.get("camera_name") or data.get("camera_id") or "secmon"),
        LOGBOOK_ENTRY_MESSAGE: f"{head} — {summary}" if summary else head,
        LOGBOOK_ENTRY_ENTITY_ID: data.get("entity_id"),
    }


def describe_tampered(data: Mapping[str, Any]) -> dict[str, str | None]:
    """The logbook line of one `secmon_tampered`, e.g. "Porch: view looks covered (0.93)"."""
    kind = str(data.get("kind") or "tampered")
    return {
        LOGBOOK_ENTRY_NAME: str(data.get("camera_name") or data.get("camera_id") or "secmon"),
        LOGBOOK_ENTRY_MESSAGE: f"view looks {kind} ({data.get('score', '?')})",
        LOGBOOK_ENTRY_ENTITY_ID: data.get("entity_id"),
    }


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str | None]]], None],
) -> None:
    """Describe secmon's bus events for the logbook."""

    @callback
    def async_describe(event: Event) -> dict[str, str | None]:
        return describe_verdict(str(event.event_type), event.data)

    async_describe_event(DOMAIN, EVENT_SECURITY, async_describe)
    async_describe_event(DOMAIN, EVENT_SECURITY_UPDATED, async_describe)

    @callback
    def async_describe_tampered(event: Event) -> dict[str, str | None]:
        return describe_tampered(event.data)

    async_describe_event(DOMAIN, EVENT_TAMPERED, async_describe_tampered)
