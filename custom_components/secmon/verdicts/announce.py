"""A stored verdict becomes HA state and events: risk sensors, snapshot, event entity, bus events.

Which of these a verdict reaches is decided by `rule.decide` (see there for the rule); this
module only carries the decision out, in an order automations can rely on: the risk sensors and the
snapshot are updated before the event entity fires and `secmon_event` is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from ..api.event_media_api import async_signed_clip_url, async_signed_thumbnail_url
from ..api.snapshot_url import async_snapshot_url
from ..const import DOMAIN, EVENT_ALERT, EVENT_SECURITY, EVENT_SECURITY_UPDATED, LOGGER
from ..entity import camera_device_identifier, camera_unique_id
from ..storage.verdict_store import StoredOutcome
from .records import VerdictRecord

if TYPE_CHECKING:
    from ..coordinator import SecmonCoordinator

# The event entity's key (event.py); bus events name the entity.
SECURITY_EVENT_KEY = "security_event"


@callback
def async_announce_verdict(
    coordinator: SecmonCoordinator,
    record: VerdictRecord,
    outcome: StoredOutcome,
    source_clips: list[str] | None = None,
    *,
    thumbnail: bool = False,
    clip: bool = False,
) -> None:
    """Carry out what storing the verdict decided. `source_clips`: the video clips (relative to
    the camera root) the event's frames were sampled from, if any; `thumbnail`: the event's
    thumbnail is stored, `clip`: the event's clip is (their URLs go into the attributes)."""
    hass, entry_id = coordinator.hass, coordinator.entry.entry_id
    camera = coordinator.cameras.get(record.camera_id)
    if camera is None:
        # Stored (and acknowledged) all the same: the camera's history is complete if its folder
        # comes back.
        LOGGER.debug(
            "Verdict %s is for camera %s, which this entry does not watch",
            record.verdict_id,
            record.camera_id,
        )
        return
    decision = outcome.decision
    if not decision.show:
        LOGGER.debug("Fast-path verdict %s arrived after its batch verdict", record.verdict_id)
        return
    if outcome.current:
        coordinator.async_set_risk(camera, record, outcome.snapshot, outcome.snapshot_at)
    attributes = record.attributes(is_update=decision.update)
    # The event's own snapshot by a signed link that outlives a notification's delivery (the
    # snapshot entity's picture is the camera's latest event, behind a token that expires).
    attributes["snapshot_url"] = async_snapshot_url(hass, entry_id, record.verdict_id)
    if source_clips:
        attributes["source_clips"] = source_clips
    if thumbnail:
        attributes["thumbnail_url"] = async_signed_thumbnail_url(hass, entry_id, record.verdict_id)
    if clip:
        attributes["clip_url"] = async_signed_clip_url(hass, entry_id, record.verdict_id)
    if decision.announce:
        coordinator.async_fire_event(camera.camera_id, record.risk_level, attributes)
    ids = _camera_ids(hass, entry_id, camera.camera_id, camera.name)
    hass.bus.async_fire(
        EVENT_SECURITY if decision.announce else EVENT_SECURITY_UPDATED, {**attributes, **ids}
    )
    # An announced event may be an alert (verdicts/alerts.py): after the event entity and
    # `secmon_event`, so automations on alerts see the camera's new state.
    if not decision.announce:
        return
    alert = dict(attributes)
    if coordinator.alerts.async_consider(record, alert):
        hass.bus.async_fire(EVENT_ALERT, {**alert, **ids})


def _camera_ids(hass: HomeAssistant, entry_id: str, camera_id: str, name: str) -> dict[str, Any]:
    device = dr.async_get(hass).async_get_device(
        identifiers={camera_device_identifier(entry_id, camera_id)}
    )
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.EVENT, DOMAIN, camera_unique_id(entry_id, camera_id, SECURITY_EVENT_KEY)
    )
    return {
        "camera_id": camera_id,
        "camera_name": name,
        "device_id": device.id if device is not None else None,
        "entity_id": entity_id,
        "config_entry_id": entry_id,
    }
