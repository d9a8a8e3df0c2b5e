"""The entry's data and options, typed, and where its database lives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .const import (
    CONF_ADDRESS,
    CONF_ALARM_ENTITY,
    CONF_ALERT_LABELS,
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CAMERA_NOTES,
    CONF_CAMERA_ROOT,
    CONF_CAMERA_ZONES,
    CONF_CLASSES,
    CONF_CLEAR_DELAY,
    CONF_CLIP_MAX_FRAMES,
    CONF_CLIP_RATE,
    CONF_DEBOUNCE,
    CONF_DELETE_UPLOADS_DAYS,
    CONF_ENRICHERS,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
    CONF_KEEP_CLIPS_DAYS,
    CONF_KEEP_EVENTS_DAYS,
    CONF_KNOWN_PLATES,
    CONF_MEDIA_CAP_GB,
    CONF_POLLING,
    CONF_PRESENCE_ENTITIES,
    CONF_QUEUE_BOUND,
    CONF_QUIET_END,
    CONF_QUIET_START,
    CONF_THRESHOLD,
    CONF_TOKEN,
    CONF_VACATION_ENTITY,
    DEFAULT_ALERT_LABELS,
    DEFAULT_BATCH_IDLE,
    DEFAULT_BATCH_WINDOW,
    DEFAULT_CLASSES,
    DEFAULT_CLEAR_DELAY,
    DEFAULT_CLIP_MAX_FRAMES,
    DEFAULT_CLIP_RATE,
    DEFAULT_DEBOUNCE,
    DEFAULT_DELETE_UPLOADS_DAYS,
    DEFAULT_FAST_PATH_CONFIDENCE,
    DEFAULT_FAST_PATH_LABELS,
    DEFAULT_KEEP_CLIPS_DAYS,
    DEFAULT_KEEP_EVENTS_DAYS,
    DEFAULT_MEDIA_CAP_GB,
    DEFAULT_POLLING,
    DEFAULT_QUEUE_BOUND,
    DEFAULT_THRESHOLD,
    DOMAIN,
    ENRICHERS,
)
from .link.client import SidecarAddress, parse_address


@dataclass(frozen=True, slots=True)
class SecmonSettings:
    """The entry's data and options, typed."""

    address: SidecarAddress
    camera_root: Path
    token: str | None
    threshold: float
    debounce: float
    polling: bool
    classes: tuple[str, ...]
    clear_delay: float
    queue_bound: int
    batch_window: float
    batch_idle: float
    fast_path_labels: tuple[str, ...]
    fast_path_confidence: float
    alert_labels: tuple[str, ...] = ()
    quiet_start: time | None = None
    quiet_end: time | None = None
    # Licence plates the home knows (normalised plate, name), sent to the sidecar.
    known_plates: tuple[tuple[str, str], ...] = ()
    # The enrichers wanted on this home's batches (the sidecar's --enrich still decides first).
    enrichers: tuple[str, ...] = ENRICHERS
    clip_rate: float = DEFAULT_CLIP_RATE
    clip_max_frames: int = DEFAULT_CLIP_MAX_FRAMES
    keep_events_days: float = DEFAULT_KEEP_EVENTS_DAYS
    keep_clips_days: float = DEFAULT_KEEP_CLIPS_DAYS
    media_cap_gb: float = DEFAULT_MEDIA_CAP_GB
    # 0: never delete uploads.
    delete_uploads_days: float = DEFAULT_DELETE_UPLOADS_DAYS
    # Context for the AI: the entities whose states the sidecar gets, and a note per camera id.
    alarm_entity: str | None = None
    presence_entities: tuple[str, ...] = ()
    vacation_entity: str | None = None
    camera_notes: Mapping[str, str] = field(default_factory=dict)
    # Per camera id, its zones as the options keep them (zones_options.py).
    camera_zones: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def home_entities(self) -> tuple[str, ...]:
        """Every entity whose state leaves Home Assistant (home_state.py)."""
        chosen = (self.alarm_entity, *self.presence_entities, self.vacation_entity)
        return tuple(dict.fromkeys(e for e in chosen if e))

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any]) -> SecmonSettings:
        """Read data and options (options fall back to defaults)."""
        options = entry.options
        return cls(
            address=parse_address(entry.data[CONF_ADDRESS]),
            camera_root=Path(entry.data[CONF_CAMERA_ROOT]),
            token=entry.data.get(CONF_TOKEN) or None,
            threshold=float(options.get(CONF_THRESHOLD, DEFAULT_THRESHOLD)),
            debounce=float(options.get(CONF_DEBOUNCE, DEFAULT_DEBOUNCE)),
            polling=bool(options.get(CONF_POLLING, DEFAULT_POLLING)),
            classes=tuple(options.get(CONF_CLASSES, DEFAULT_CLASSES)),
            clear_delay=float(options.get(CONF_CLEAR_DELAY, DEFAULT_CLEAR_DELAY)),
            queue_bound=int(options.get(CONF_QUEUE_BOUND, DEFAULT_QUEUE_BOUND)),
            batch_window=float(options.get(CONF_BATCH_WINDOW, DEFAULT_BATCH_WINDOW)),
            batch_idle=float(options.get(CONF_BATCH_IDLE, DEFAULT_BATCH_IDLE)),
            fast_path_labels=tuple(options.get(CONF_FAST_PATH_LABELS, DEFAULT_FAST_PATH_LABELS)),
            fast_path_confidence=float(
                options.get(CONF_FAST_PATH_CONFIDENCE, DEFAULT_FAST_PATH_CONFIDENCE)
            ),
            alert_labels=tuple(options.get(CONF_ALERT_LABELS, DEFAULT_ALERT_LABELS)),
            quiet_start=_time_option(options.get(CONF_QUIET_START)),
            quiet_end=_time_option(options.get(CONF_QUIET_END)),
            enrichers=tuple(
                n for n in ENRICHERS if n in options.get(CONF_ENRICHERS, ENRICHERS)
            ),
            known_plates=tuple(
                (str(plate), str(name))
                for plate, name in dict(options.get(CONF_KNOWN_PLATES) or {}).items()
            ),
            clip_rate=float(options.get(CONF_CLIP_RATE, DEFAULT_CLIP_RATE)),
            clip_max_frames=int(options.get(CONF_CLIP_MAX_FRAMES, DEFAULT_CLIP_MAX_FRAMES)),
            keep_events_days=float(options.get(CONF_KEEP_EVENTS_DAYS, DEFAULT_KEEP_EVENTS_DAYS)),
            keep_clips_days=float(options.get(CONF_KEEP_CLIPS_DAYS, DEFAULT_KEEP_CLIPS_DAYS)),
            media_cap_gb=float(options.get(CONF_MEDIA_CAP_GB, DEFAULT_MEDIA_CAP_GB)),
            delete_uploads_days=float(
                options.get(CONF_DELETE_UPLOADS_DAYS, DEFAULT_DELETE_UPLOADS_DAYS)
            ),
            alarm_entity=options.get(CONF_ALARM_ENTITY) or None,
            presence_entities=tuple(options.get(CONF_PRESENCE_ENTITIES) or ()),
            vacation_entity=options.get(CONF_VACATION_ENTITY) or None,
            camera_notes=dict(options.get(CONF_CAMERA_NOTES) or {}),
            camera_zones=dict(options.get(CONF_CAMERA_ZONES) or {}),
        )


def _time_option(value: Any) -> time | None:
    """A time of day as the options store it ("HH:MM[:SS]"); None if unset or unreadable."""
    if not value:
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        return None


def database_path(hass: HomeAssistant, entry_id: str) -> Path:
    """Where an entry's database lives (HA's config directory)."""
    return Path(hass.config.path(DOMAIN, f"{entry_id}.db"))
