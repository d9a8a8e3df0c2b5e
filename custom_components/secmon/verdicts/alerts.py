"""Alerts: the security events that pass their camera's alert rules.

An announced security event (see rule.py: the first verdict of an event, or a later one that
raises its level) is an *alert* when all of these hold:

- alerts are armed house-wide (`switch.secmon_alerts`) and for the camera (`switch.<cam>_alerts`);
- neither the house nor the camera is snoozed (`secmon.snooze`);
- its level is at least the camera's minimum (`select.<cam>_alert_level`);
- it shows one of the alert labels, if the options name any;
- it is critical, or it is not within the quiet hours of the options;
- the event has not alerted before at this level or higher (an event alerts once, and again only
  when its level rises, as with announcements);
- the camera's last alert is at least its cooldown ago (`number.<cam>_alert_cooldown`).

An alert fires `event.<cam>_alert` and the `secmon_alert` bus event. The rule state lives here; the
entities restore it after a restart and write it back when the user changes it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.util import dt as dt_util

from ..const import DEFAULT_ALERT_COOLDOWN, DEFAULT_ALERT_LEVEL
from .records import VerdictRecord, level_rank

# How many alerted event ids a camera remembers (an event's verdicts arrive within minutes).
_ALERTED_KEPT = 256

# The listener key of the house-wide alert state.
HOUSE_KEY = "__house__"

AlertListener = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class CameraAlerts:
    """One camera's alert rules and what it alerted."""

    armed: bool = True
    min_level: str = DEFAULT_ALERT_LEVEL
    cooldown: float = DEFAULT_ALERT_COOLDOWN
    snoozed_until: datetime | None = None
    last_alert_at: datetime | None = None
    # Event id -> rank it alerted at, oldest first.
    alerted: OrderedDict[str, int] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class HouseAlerts:
    """The house-wide switch and snooze."""

    armed: bool = True
    snoozed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertFilters:
    """The alert options of the entry."""

    labels: frozenset[str] = frozenset()
    quiet_start: time | None = None
    quiet_end: time | None = None

    def quiet(self, now: datetime) -> bool:
        """Whether `now` lies within the quiet hours (the span may cross midnight)."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        if self.quiet_start == self.quiet_end:
            return False
        local = dt_util.as_local(now).time().replace(tzinfo=None)
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end


def _snoozed(until: datetime | None, now: datetime) -> bool:
    return until is not None and now < until


def blocked_by(
    record: VerdictRecord,
    house: HouseAlerts,
    camera: CameraAlerts,
    filters: AlertFilters,
    now: datetime,
) -> str | None:
    """Why an announced event is not an alert, or None if it is one."""
    if not house.armed or not camera.armed:
        return "disarmed"
    if _snoozed(house.snoozed_until, now) or _snoozed(camera.snoozed_until, now):
        return "snoozed"
    if record.rank < level_rank(camera.min_level):
        return "below_level"
    if filters.labels and not filters.labels.intersection(record.labels):
        return "labels"
    if record.risk_level != "critical" and filters.quiet(now):
        return "quiet_hours"
    alerted = camera.alerted.get(record.event_id)
    if alerted is not None and record.rank <= alerted:
        return "already_alerted"
    if camera.last_alert_at is not None and now - camera.last_alert_at < timedelta(
        seconds=camera.cooldown
    ):
        return "cooldown"
    return None


class AlertCenter:
    """The alert state of one entry, its rule, and who is told of changes and alerts."""

    def __init__(self, filters: AlertFilters) -> None:
        """Start armed, not snoozed, with the default level and cooldown per camera."""
        self.filters = filters
        self.house = HouseAlerts()
        self.cameras: dict[str, CameraAlerts] = {}
        self._listeners: dict[str, list[CALLBACK_TYPE]] = {}
        self._alert_listeners: dict[str, list[AlertListener]] = {}

    def camera(self, camera_id: str) -> CameraAlerts:
        """A camera's alert state (created with the defaults)."""
        return self.cameras.setdefault(camera_id, CameraAlerts())

    @callback
    def async_add_listener(self, key: str, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call `update` when the alert state of camera `key` (or HOUSE_KEY) changes."""
        self._listeners.setdefault(key, []).append(update)
        return lambda: self._listeners[key].remove(update)

    @callback
    def async_add_alert_listener(self, camera_id: str, fire: AlertListener) -> CALLBACK_TYPE:
        """Call `fire(level, attributes)` when the camera alerts."""
        self._alert_listeners.setdefault(camera_id, []).append(fire)
        return lambda: self._alert_listeners[camera_id].remove(fire)

    @callback
    def async_changed(self, key: str) -> None:
        """The alert state of `key` changed: tell its entities."""
        for update in list(self._listeners.get(key, ())):
            update()

    @callback
    def async_snooze(self, camera_ids: list[str] | None, until: datetime | None) -> None:
        """Snooze the cameras (None: the house) until `until`; None ends the snooze."""
        if camera_ids is None:
            self.house.snoozed_until = until
            self.async_changed(HOUSE_KEY)
            return
        for camera_id in camera_ids:
            self.camera(camera_id).snoozed_until = until
            self.async_changed(camera_id)

    @callback
    def async_consider(
        self, record: VerdictRecord, attributes: dict[str, Any], now: datetime | None = None
    ) -> bool:
        """An announced event: alert (tell the camera's alert listeners) if it passes the rule."""
        now = now or dt_util.utcnow()
        camera = self.camera(record.camera_id)
        reason = blocked_by(record, self.house, camera, self.filters, now)
        if reason is not None:
            return False
        camera.last_alert_at = now
        camera.alerted[record.event_id] = record.rank
        camera.alerted.move_to_end(record.event_id)
        while len(camera.alerted) > _ALERTED_KEPT:
            camera.alerted.popitem(last=False)
        for fire in list(self._alert_listeners.get(record.camera_id, ())):
            fire(record.risk_level, attributes)
        return True
