"""`secmon.analyze_image`: detections for one image file or any camera's snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import SecmonConfigEntry
from .ingest.files import RefusedFileError, read_capped, resolve_allowed
from .ingest.imaging import InvalidImageError, check_image
from .link.client import SidecarAuthError, SidecarUnavailableError, async_analyze
from .link.proto import secmon_pb2

SERVICE_ANALYZE_IMAGE = "analyze_image"
ATTR_FILE_PATH = "file_path"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_THRESHOLD = "threshold"

ANALYZE_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Exclusive(ATTR_FILE_PATH, "source"): cv.string,
            vol.Exclusive(ATTR_ENTITY_ID, "source"): cv.entity_domain("camera"),
            vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
            vol.Optional(ATTR_THRESHOLD): vol.All(vol.Coerce(float), vol.Range(min=0.0, max=1.0)),
        }
    ),
    cv.has_at_least_one_key(ATTR_FILE_PATH, ATTR_ENTITY_ID),
)


def _checked_path(hass: HomeAssistant, file_path: str) -> Path:
    """The resolved path, if HA may read it (blocking: the allow-list check resolves symlinks)."""
    return resolve_allowed(Path(file_path), hass.config.is_allowed_path)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, for every entry)."""

    async def analyze_image(call: ServiceCall) -> ServiceResponse:
        entries: list[SecmonConfigEntry] = [
            e
            for e in hass.config_entries.async_entries(DOMAIN)
            if e.state is ConfigEntryState.LOADED
        ]
        if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
            entries = [e for e in entries if e.entry_id == entry_id]
        if not entries:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_sidecar")
        coordinator = entries[0].runtime_data

        if ATTR_FILE_PATH in call.data:
            file_path: str = call.data[ATTR_FILE_PATH]
            if not file_path.strip() or "\0" in file_path:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="invalid_path",
                    translation_placeholders={"path": repr(file_path)},
                )
            try:
                path = await hass.async_add_executor_job(_checked_path, hass, file_path)
            except (RefusedFileError, OSError, ValueError) as err:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="path_not_allowed",
                    translation_placeholders={"path": file_path},
                ) from err
            try:
                read = await hass.async_add_executor_job(
                    read_capped, path, coordinator.max_frame_bytes
                )
                data = read.data
            except RefusedFileError as err:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="file_not_readable",
                    translation_placeholders={"path": file_path, "error": str(err)},
                ) from err
            except OSError as err:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="file_not_readable",
                    translation_placeholders={"path": file_path, "error": str(err)},
                ) from err
            source = file_path
        else:
            entity_id: str = call.data[ATTR_ENTITY_ID]
            try:
                image = await async_get_image(hass, entity_id)
            except HomeAssistantError as err:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="camera_image_unavailable",
                    translation_placeholders={"entity_id": entity_id, "error": str(err)},
                ) from err
            data = image.content
            source = entity_id

        try:
            checked = await hass.async_add_executor_job(check_image, data, coordinator.max_pixels)
        except InvalidImageError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_image",
                translation_placeholders={"source": source, "error": str(err)},
            ) from err

        frame = secmon_pb2.Frame(
            frame_id=f"analyze-{checked.sha256[:32]}",
            camera_id="analyze_image",
            image=data,
            content_type=checked.content_type,
            source_path=source,
        )
        frame.captured_at.FromDatetime(dt_util.utcnow())
        threshold = call.data.get(ATTR_THRESHOLD, coordinator.settings.threshold)
        try:
            result = await async_analyze(
                coordinator.settings.address, coordinator.settings.token, frame, threshold
            )
        except SidecarAuthError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="sidecar_auth_failed"
            ) from err
        except SidecarUnavailableError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="sidecar_unavailable",
                translation_placeholders={"error": str(err)},
            ) from err
        if result.HasField("error"):
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_image",
                translation_placeholders={"source": source, "error": result.error.message},
            )
        return result_to_dict(result, source)

    hass.services.async_register(
        DOMAIN,
        SERVICE_ANALYZE_IMAGE,
        analyze_image,
        schema=ANALYZE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def result_to_dict(result: secmon_pb2.FrameResult, source: str) -> dict[str, Any]:
    """A FrameResult as service response data."""
    return {
        "source": source,
        "width": result.width,
        "height": result.height,
        "inference_ms": round(result.inference_ms, 2),
        "detections": [
            {
                "label": d.label,
                "confidence": round(d.confidence, 4),
                "box": {
                    "x_min": round(d.box.x_min, 1),
                    "y_min": round(d.box.y_min, 1),
                    "x_max": round(d.box.x_max, 1),
                    "y_max": round(d.box.y_max, 1),
                },
            }
            for d in result.detections
        ],
    }
