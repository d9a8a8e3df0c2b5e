"""Constants for the secmon integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "secmon"
LOGGER = logging.getLogger(__package__)

# Config entry data.
CONF_ADDRESS: Final = "address"
CONF_CAMERA_ROOT: Final = "camera_root"
CONF_TOKEN: Final = "access_token"

# Options.
CONF_THRESHOLD: Final = "detection_threshold"
CONF_DEBOUNCE: Final = "debounce_seconds"
CONF_POLLING: Final = "polling"
CONF_CLASSES: Final = "classes_of_interest"
CONF_CLEAR_DELAY: Final = "occupancy_clear_delay"
CONF_QUEUE_BOUND: Final = "queue_max_frames"
CONF_BATCH_WINDOW: Final = "batch_window_seconds"
CONF_BATCH_IDLE: Final = "batch_idle_seconds"
CONF_FAST_PATH_LABELS: Final = "fast_path_labels"
CONF_FAST_PATH_CONFIDENCE: Final = "fast_path_confidence"
CONF_ALERT_LABELS: Final = "alert_labels"
CONF_QUIET_START: Final = "quiet_hours_start"
CONF_QUIET_END: Final = "quiet_hours_end"
# plate -> name; the options form shows it as text (plates.py).
CONF_KNOWN_PLATES: Final = "known_plates"
# The sidecar's enrichers this home wants run (the others are switched off for its batches).
CONF_ENRICHERS: Final = "enrichers"
ENRICHERS: Final = ("caption", "attributes", "plates", "pose", "depth")
CONF_CLIP_RATE: Final = "clip_frames_per_second"
CONF_CLIP_MAX_FRAMES: Final = "clip_max_frames"
CONF_KEEP_EVENTS_DAYS: Final = "keep_events_days"
CONF_KEEP_CLIPS_DAYS: Final = "keep_clips_days"
CONF_MEDIA_CAP_GB: Final = "media_cap_gb"
CONF_DELETE_UPLOADS_DAYS: Final = "delete_uploads_after_days"
# Context for the AI (the options' "context" step).
CONF_ALARM_ENTITY: Final = "alarm_entity"
CONF_PRESENCE_ENTITIES: Final = "presence_entities"
CONF_VACATION_ENTITY: Final = "vacation_entity"
CONF_CAMERA_NOTES: Final = "camera_notes"
CONF_CAMERA_ZONES: Final = "camera_zones"
ZONE_KINDS: Final = ("entry_point", "driveway", "yard", "public", "other")
# The longest note per camera (the sidecar quotes at most this much).
CAMERA_NOTE_MAX_CHARS: Final = 200

DEFAULT_THRESHOLD: Final = 0.5
DEFAULT_DEBOUNCE: Final = 0.5
DEFAULT_POLLING: Final = False
DEFAULT_CLEAR_DELAY: Final = 30.0
DEFAULT_QUEUE_BOUND: Final = 1000
DEFAULT_CLASSES: Final[list[str]] = []  # empty: every class counts
DEFAULT_BATCH_WINDOW: Final = 90.0
DEFAULT_BATCH_IDLE: Final = 30.0
DEFAULT_FAST_PATH_LABELS: Final[list[str]] = ["person"]  # empty: no fast path
DEFAULT_FAST_PATH_CONFIDENCE: Final = 0.9
DEFAULT_ALERT_LABELS: Final[list[str]] = []  # empty: every label alerts
DEFAULT_CLIP_RATE: Final = 2.0
DEFAULT_CLIP_MAX_FRAMES: Final = 20
DEFAULT_KEEP_EVENTS_DAYS: Final = 30
DEFAULT_KEEP_CLIPS_DAYS: Final = 30
DEFAULT_MEDIA_CAP_GB: Final = 5.0
DEFAULT_DELETE_UPLOADS_DAYS: Final = 0  # 0: never delete uploads

# Labels the occupancy sensors group (COCO names as the detector reports them).
PERSON_LABELS: Final = frozenset({"person"})
VEHICLE_LABELS: Final = frozenset(
    {"bicycle", "car", "motorcycle", "bus", "truck", "train", "boat", "airplane"}
)
ANIMAL_LABELS: Final = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)
# Bags and parcels left or taken: no occupancy sensor of their own, but worth watching for.
CARRIED_LABELS: Final = frozenset({"backpack", "handbag", "suitcase", "umbrella"})
CLASS_CHOICES: Final = sorted(PERSON_LABELS | VEHICLE_LABELS | ANIMAL_LABELS | CARRIED_LABELS)

IMAGE_EXTENSIONS: Final = frozenset({".jpg", ".jpeg", ".png"})
VIDEO_EXTENSIONS: Final = frozenset({".mp4", ".mkv", ".avi", ".mov"})
# The largest clip decoded (a camera's alarm recording is a few MB; a runaway upload is refused).
MAX_CLIP_BYTES: Final = 512 * 1024 * 1024

# Stream behaviour.
MAX_IN_FLIGHT: Final = 8
MAX_FRAME_ATTEMPTS: Final = 5
# Sessions a frame may end (sent, then the stream broke before any answer) before it is set aside.
MAX_SESSION_BREAKS: Final = 3
GRPC_MAX_MESSAGE_BYTES: Final = 32 * 1024 * 1024
# The largest image sent: leaves room in a stream message for the frame's other fields.
MAX_FRAME_BYTES: Final = GRPC_MAX_MESSAGE_BYTES - 64 * 1024
HEALTH_TIMEOUT: Final = 5.0
# Seconds the sidecar may be away before a repair issue is raised.
UNREACHABLE_ISSUE_DELAY: Final = 180.0
POLLING_INTERVAL: Final = 2.0

# A camera device whose folder has been gone this long is removed (its history stays).
STALE_CAMERA_GRACE: Final = 7 * 24 * 3600.0
STALE_CHECK_INTERVAL: Final = timedelta(hours=1)

# Risk levels, lowest first (the sidecar's score bands 0-29 / 30-59 / 60-84 / 85-100).
RISK_LEVELS: Final = ("low", "medium", "high", "critical")

# Bus events. `secmon_event` fires once per security event (and again, flagged `update`, when the
# batch verdict raises the fast-path verdict's level); `secmon_event_updated` records every other
# verdict (logbook only, not meant for notifications). See verdicts/rule.py for the rule.
EVENT_SECURITY: Final = "secmon_event"
EVENT_SECURITY_UPDATED: Final = "secmon_event_updated"
# A camera's view started to look tampered with (moved, covered, blurred, dark).
EVENT_TAMPERED: Final = "secmon_tampered"
TAMPER_KINDS: Final = ("none", "moved", "covered", "blurred", "dark")
# `secmon_alert`: a security event passed its camera's alert rules (verdicts/alerts.py).
EVENT_ALERT: Final = "secmon_alert"
# `secmon_feedback`: the owner marked an event (`secmon.feedback`).
EVENT_FEEDBACK: Final = "secmon_feedback"
FEEDBACK_VERDICTS: Final = ("false_alarm", "confirmed")

# Alert rules a camera starts with (its switch, select and number entities change them).
DEFAULT_ALERT_LEVEL: Final = "high"
DEFAULT_ALERT_COOLDOWN: Final = 120.0
MAX_ALERT_COOLDOWN: Final = 86_400.0

# Verdict history in the integration's SQLite.
VERDICTS_KEPT_DAYS: Final = 30
VERDICTS_KEPT: Final = 10_000

# The coordinator's listener key for the sidecar's entities (camera entities listen to a camera id).
SIDECAR_KEY: Final = "__sidecar__"

ISSUE_SIDECAR_UNREACHABLE: Final = "sidecar_unreachable"
ISSUE_QUEUE_OVERFLOW: Final = "queue_overflow"
ISSUE_MEDIA_CAP: Final = "media_cap_reached"
ISSUE_RANDOM_MODELS: Final = "random_models"
ISSUE_DATABASE_DAMAGED: Final = "database_damaged"
ISSUE_DATABASE_RESTORED: Final = "database_restored"
# How often the database file is checked for having been deleted underneath us (seconds).
DATABASE_CHECK_INTERVAL: Final = 60.0
# How often retention runs (and once at start).
RETENTION_INTERVAL: Final = 3600.0

CLIENT_VERSION: Final = "0.1.0"
