"""Helpers for verdict tests: a sidecar with short event windows, options, status, history."""

from __future__ import annotations

import grpc
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CLEAR_DELAY,
    CONF_DEBOUNCE,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
    CONF_THRESHOLD,
)
from custom_components.secmon.link.proto import secmon_pb2, secmon_pb2_grpc
from custom_components.secmon.storage.verdict_store import HistoryEntry
from sidecar.detection.models.coco_labels import COCO_LABELS

# The tiny random detector scores everything around 0.1: a threshold this low lets detections
# through, and a fast-path confidence of 0.05 for every label makes the first frame take it.
DETECTION_THRESHOLD = 0.001
EVERY_LABEL = list(COCO_LABELS)


def verdict_options(
    *, window: float = 5.0, idle: float = 1.0, fast_path: bool = False
) -> dict[str, object]:
    """Entry options with short event windows (sent to the sidecar in Hello)."""
    return {
        CONF_DEBOUNCE: 0.2,
        CONF_CLEAR_DELAY: 30.0,
        CONF_THRESHOLD: DETECTION_THRESHOLD,
        CONF_BATCH_WINDOW: window,
        CONF_BATCH_IDLE: idle,
        CONF_FAST_PATH_LABELS: EVERY_LABEL if fast_path else [],
        CONF_FAST_PATH_CONFIDENCE: 0.05,
    }


def sidecar_status(address: str) -> secmon_pb2.SidecarStatus:
    """The sidecar's status, asked directly (blocking; run in the executor)."""
    with grpc.insecure_channel(address) as channel:
        reply = secmon_pb2_grpc.SidecarStub(channel).GetStatus(
            secmon_pb2.GetStatusRequest(), timeout=10
        )
    return reply.status


async def async_history(hass: HomeAssistant, entry: MockConfigEntry) -> list[HistoryEntry]:
    """Every verdict the entry stored, newest first."""
    return await hass.async_add_executor_job(entry.runtime_data.verdicts.history, 10_000)


async def async_camera_history(
    hass: HomeAssistant, entry: MockConfigEntry, camera_id: str
) -> list[HistoryEntry]:
    """The verdicts stored for one camera, oldest first."""
    history = await async_history(hass, entry)
    return [h for h in reversed(history) if h.record.camera_id == camera_id]
