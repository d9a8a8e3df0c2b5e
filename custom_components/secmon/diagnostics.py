"""Diagnostics: settings (token, known plates and camera notes redacted), cameras, queue,
counters, sidecar status, the enrichment model zoo, verdicts."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import CONF_CAMERA_NOTES, CONF_KNOWN_PLATES, CONF_TOKEN
from .coordinator import SecmonConfigEntry
from .storage.verdict_store import HistoryEntry

TO_REDACT = {CONF_TOKEN}
# Licence plates and the names of their owners; the owner's words about their cameras.
OPTIONS_TO_REDACT = {CONF_KNOWN_PLATES, CONF_CAMERA_NOTES}
# Free text written by the LLM and the image models about what the cameras saw in someone's home
# (summarised by length), and the licence plates they read: not copied into a bug report.
VERDICT_TEXT_TO_REDACT = {"summary", "reasoning", "caption", "plates", "plate", "known_plate"}
RECENT_VERDICTS = 20
# The prompt's data block (camera names, the owner's notes, text read from images) is redacted
# value by value; what the system measured (home state, how usual, detections) stays readable.
_DATA_BEGIN = "⟦BEGIN UNTRUSTED DATA⟧"
_DATA_END = "⟦END UNTRUSTED DATA⟧"
REDACTED = "**REDACTED**"


def redact_prompt(prompt: str) -> str:
    """The prompt with every value of its data block redacted (field names kept)."""
    lines: list[str] = []
    inside = False
    for line in prompt.split("\n"):
        if line in {_DATA_BEGIN, _DATA_END}:
            inside = line == _DATA_BEGIN
        elif inside:
            lines.append(f"{line.partition(': ')[0]}: {REDACTED}")
            continue
        lines.append(line)
    return "\n".join(lines)


def _value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_dict(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    return value


def message_dict(message: Message) -> dict[str, Any]:
    """A protobuf message as the rest of the diagnostics: snake_case names, numbers as numbers
    (MessageToDict gives camelCase and 64-bit integers as strings); every field, zero or not."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {key: _value(value_field, item) for key, item in value.items()}
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [_value(field, item) for item in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not message.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _value(field, value)
    return out


def _verdict(entry: HistoryEntry) -> dict[str, Any]:
    record = entry.record
    message = record.message
    data = {
        **record.attributes(is_update=False),
        "camera_id": record.camera_id,
        "announced": entry.announced,
        "received_at": dt_util.utc_from_timestamp(entry.received_at).isoformat(),
        "close_reason": message.close_reason,
        "model": message.model,
        "llm_ms": message.llm_ms,
        "completion_tokens": message.completion_tokens,
        "frames": len(message.frame_ids),
        "snapshot_frame_id": message.snapshot_frame_id,
        "summary_chars": len(message.summary),
        "reasoning_chars": len(message.reasoning),
        "caption_chars": len(message.caption),
        "anomaly": round(message.anomaly, 3),
        "baseline_days": round(message.baseline_days, 1),
        "prompt": redact_prompt(message.prompt),
    }
    del data["is_update"]
    return async_redact_data(data, VERDICT_TEXT_TO_REDACT)


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SecmonConfigEntry
) -> dict[str, Any]:
    """What a bug report needs."""
    coordinator = entry.runtime_data
    pending = await hass.async_add_executor_job(coordinator.queue.pending_count)
    history = await hass.async_add_executor_job(coordinator.verdicts.history, RECENT_VERDICTS)
    stored_verdicts = await hass.async_add_executor_job(coordinator.verdicts.count)
    sidecar = coordinator.sidecar
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), OPTIONS_TO_REDACT),
        },
        "sidecar": {
            "connected": sidecar.connected,
            "server_version": sidecar.server_version,
            "connected_since": (
                sidecar.connected_since.isoformat() if sidecar.connected_since else None
            ),
            "disconnected_since": (
                sidecar.disconnected_since.isoformat() if sidecar.disconnected_since else None
            ),
            "last_error": sidecar.last_error,
            "connection_attempts": coordinator.stream.attempts,
            "sessions": coordinator.stream.sessions,
            "frames_in_flight": coordinator.stream.in_flight,
            "status": message_dict(sidecar.status) if sidecar.status is not None else None,
        },
        # The enrichment models under their memory budget; None before a status or with
        # enrichment off.
        "enrichment": (
            message_dict(sidecar.status.enrichment)
            if sidecar.status is not None and sidecar.status.HasField("enrichment")
            else None
        ),
        "queue": {
            "pending": pending,
            "max_frames": coordinator.queue.max_frames,
        },
        "counters": dict(coordinator.counters),
        "cameras": {
            camera.camera_id: {
                "name": camera.name,
                "last_frame_id": camera.frame_id,
                "last_frame_at": camera.captured_at.isoformat() if camera.captured_at else None,
                "label_counts": camera.label_counts,
                "current_verdict_id": camera.risk.verdict_id if camera.risk else None,
                "has_snapshot": camera.snapshot is not None,
                "feedback": dict(camera.feedback_counts),
                "tamper": {
                    "kind": camera.tamper_kind,
                    "score": camera.tamper_score,
                    "since": camera.tamper_since.isoformat() if camera.tamper_since else None,
                    "last_event": camera.last_tamper_event,
                },
            }
            for camera in coordinator.cameras.values()
        },
        "verdicts": {
            "stored": stored_verdicts,
            "recent": [_verdict(item) for item in history],
        },
    }
