"""Diagnostics: settings (token redacted), cameras, queue, counters, sidecar status."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_TOKEN
from .runtime import SecmonConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SecmonConfigEntry
) -> dict[str, Any]:
    """What a bug report needs."""
    runtime = entry.runtime_data
    hub = runtime.hub
    pending = await hass.async_add_executor_job(runtime.queue.pending_count)
    sidecar = hub.sidecar
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
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
            "connection_attempts": runtime.stream.attempts,
            "sessions": runtime.stream.sessions,
            "frames_in_flight": runtime.stream.in_flight,
            "status": MessageToDict(sidecar.status) if sidecar.status is not None else None,
        },
        "queue": {
            "pending": pending,
            "max_frames": runtime.queue.max_frames,
        },
        "counters": dict(hub.counters),
        "cameras": {
            camera.camera_id: {
                "name": camera.name,
                "last_frame_id": camera.frame_id,
                "last_frame_at": camera.captured_at.isoformat() if camera.captured_at else None,
                "label_counts": camera.label_counts,
            }
            for camera in hub.cameras.values()
        },
    }
