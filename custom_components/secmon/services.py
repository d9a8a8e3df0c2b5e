"""`secmon.analyze_image`: detections for one image file or any camera's snapshot.
`secmon.snooze`: silence alerts for a while, house-wide or per camera.
`secmon.search_events` / `secmon.get_event`: the stored security events, as response data.
`secmon.feedback`: the owner marks an event as a false alarm or confirms it."""

from __future__ import annotations

from datetime import timedelta
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
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EVENT_FEEDBACK, FEEDBACK_VERDICTS, RISK_LEVELS
from .coordinator import SecmonConfigEntry
from .entity import camera_unique_id
from .ingest.files import RefusedFileError, read_capped, resolve_allowed
from .ingest.imaging import InvalidImageError, check_image
from .link.client import SidecarAuthError, SidecarUnavailableError, async_analyze
from .link.convert import analyze_frame, result_to_dict
from .storage.event_search import (
    EventQuery,
    StoredEvent,
    get_event,
    search_events,
    set_feedback,
)
from .verdicts.records import level_rank

SERVICE_ANALYZE_IMAGE = "analyze_image"
ATTR_FILE_PATH = "file_path"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_THRESHOLD = "threshold"
SERVICE_SNOOZE = "snooze"
ATTR_DURATION = "duration"
ATTR_CAMERAS = "cameras"

SNOOZE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_DURATION): cv.positive_time_period,
        vol.Optional(ATTR_CAMERAS): cv.entity_ids,
    }
)

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

SERVICE_SEARCH_EVENTS = "search_events"
SERVICE_GET_EVENT = "get_event"
ATTR_START = "start"
ATTR_END = "end"
ATTR_MIN_LEVEL = "min_level"
ATTR_LABELS = "labels"
ATTR_ZONES = "zones"
ATTR_TEXT = "text"
ATTR_OFFSET = "offset"
ATTR_LIMIT = "limit"
ATTR_EVENT_ID = "event_id"
MAX_PAGE = 100

SEARCH_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CAMERAS): cv.entity_ids,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_MIN_LEVEL, default=RISK_LEVELS[0]): vol.In(RISK_LEVELS),
        vol.Optional(ATTR_LABELS, default=list): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_ZONES, default=list): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_TEXT, default=""): vol.All(cv.string, vol.Length(max=200)),
        vol.Optional(ATTR_OFFSET, default=0): vol.All(vol.Coerce(int), vol.Range(min=0)),
        vol.Optional(ATTR_LIMIT, default=20): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=MAX_PAGE)
        ),
    }
)
GET_EVENT_SCHEMA = vol.Schema({vol.Required(ATTR_EVENT_ID): cv.string})
SERVICE_FEEDBACK = "feedback"
ATTR_VERDICT = "verdict"
ATTR_NOTE = "note"
FEEDBACK_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_EVENT_ID): cv.string,
        vol.Required(ATTR_VERDICT): vol.In(FEEDBACK_VERDICTS),
        vol.Optional(ATTR_NOTE, default=""): vol.All(cv.string, vol.Length(max=500)),
    }
)


def _aware(value: Any) -> Any:
    """A naive datetime from the service call is in the home's time zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt_util.get_default_time_zone())


def _loaded_entries(hass: HomeAssistant) -> list[SecmonConfigEntry]:
    return [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]


@callback
def _cameras_of(
    hass: HomeAssistant, entity_ids: list[str]
) -> dict[str, tuple[SecmonConfigEntry, list[str]]]:
    """Camera entity ids -> {entry id: (entry, camera ids)}; unknown ones are refused."""
    registry = er.async_get(hass)
    entries = {e.entry_id: e for e in _loaded_entries(hass)}
    found: dict[str, tuple[SecmonConfigEntry, list[str]]] = {}
    for entity_id in entity_ids:
        entity = registry.async_get(entity_id)
        entry = entries.get(entity.config_entry_id or "") if entity is not None else None
        camera_id = next(
            (
                camera_id
                for camera_id in (entry.runtime_data.cameras if entry is not None else ())
                if entity is not None
                and entry is not None
                and entity.unique_id == camera_unique_id(entry.entry_id, camera_id, "camera")
            ),
            None,
        )
        if entry is None or camera_id is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_camera",
                translation_placeholders={"entity_id": entity_id},
            )
        found.setdefault(entry.entry_id, (entry, []))[1].append(camera_id)
    return found


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

        frame = analyze_frame(data, checked.sha256, checked.content_type, source)
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

    @callback
    def snooze(call: ServiceCall) -> None:
        duration: timedelta = call.data[ATTR_DURATION]
        until = dt_util.utcnow() + duration if duration > timedelta(0) else None
        if ATTR_CAMERAS in call.data:
            for entry, camera_ids in _cameras_of(hass, call.data[ATTR_CAMERAS]).values():
                entry.runtime_data.alerts.async_snooze(camera_ids, until)
            return
        entries = _loaded_entries(hass)
        if not entries:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_sidecar")
        for entry in entries:
            entry.runtime_data.alerts.async_snooze(None, until)

    hass.services.async_register(DOMAIN, SERVICE_SNOOZE, snooze, schema=SNOOZE_SCHEMA)

    async def search(call: ServiceCall) -> ServiceResponse:
        data = call.data
        if ATTR_CAMERAS in data:
            targets = [
                (entry, frozenset(ids))
                for entry, ids in _cameras_of(hass, data[ATTR_CAMERAS]).values()
            ]
        else:
            targets = [(entry, frozenset[str]()) for entry in _loaded_entries(hass)]
        offset, limit = data[ATTR_OFFSET], data[ATTR_LIMIT]
        found: list[StoredEvent] = []
        total = 0
        for entry, camera_ids in targets:
            query = EventQuery(
                camera_ids=camera_ids,
                start=_aware(data.get(ATTR_START)),
                end=_aware(data.get(ATTR_END)),
                min_rank=level_rank(data[ATTR_MIN_LEVEL]),
                labels=frozenset(data[ATTR_LABELS]),
                zones=frozenset(data[ATTR_ZONES]),
                text=data[ATTR_TEXT],
                offset=0,
                limit=offset + limit,
            )
            page, count = await hass.async_add_executor_job(
                search_events, entry.runtime_data.database, query
            )
            found.extend(page)
            total += count
        found.sort(key=lambda e: e.started, reverse=True)
        events = [event.as_dict() for event in found[offset : offset + limit]]
        following = offset + len(events)
        return {
            "events": events,
            "total": total,
            "offset": offset,
            "next_offset": following if following < total else None,
        }

    hass.services.async_register(
        DOMAIN,
        SERVICE_SEARCH_EVENTS,
        search,
        schema=SEARCH_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

    async def get(call: ServiceCall) -> ServiceResponse:
        event_id: str = call.data[ATTR_EVENT_ID]
        for entry in _loaded_entries(hass):
            event = await hass.async_add_executor_job(
                get_event, entry.runtime_data.database, event_id
            )
            if event is not None:
                return event.as_dict(with_verdicts=True)
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_event",
            translation_placeholders={"event_id": event_id},
        )

    async def feedback(call: ServiceCall) -> None:
        await async_give_feedback(
            hass, call.data[ATTR_EVENT_ID], call.data[ATTR_VERDICT], call.data[ATTR_NOTE]
        )

    hass.services.async_register(DOMAIN, SERVICE_FEEDBACK, feedback, schema=FEEDBACK_SCHEMA)

    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_EVENT,
        get,
        schema=GET_EVENT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

    hass.services.async_register(
        DOMAIN,
        SERVICE_ANALYZE_IMAGE,
        analyze_image,
        schema=ANALYZE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


async def async_give_feedback(hass: HomeAssistant, event_id: str, verdict: str, note: str) -> None:
    """Store the owner's feedback with the event (whichever entry holds it); tell the bus."""
    for entry in _loaded_entries(hass):
        if await hass.async_add_executor_job(
            set_feedback, entry.runtime_data.database, event_id, verdict, note
        ):
            await entry.runtime_data.async_on_feedback(event_id)
            hass.bus.async_fire(
                EVENT_FEEDBACK,
                {
                    "event_id": event_id,
                    "verdict": verdict,
                    "note": note,
                    "config_entry_id": entry.entry_id,
                },
            )
            return
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_event",
        translation_placeholders={"event_id": event_id},
    )
