"""`calendar.secmon_events`: the stored security events as calendar items (one per event)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.calendar import (
    CalendarEntity,
    CalendarEntityDescription,
    CalendarEvent,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import EVENT_SECURITY, EVENT_SECURITY_UPDATED
from .coordinator import SecmonConfigEntry
from .entity import SecmonEntity, sidecar_unique_id
from .storage.event_search import EventQuery, StoredEvent, search_events

PARALLEL_UPDATES = 0

# An event whose end is not known yet lasts this long on the calendar.
MIN_DURATION = timedelta(minutes=1)
# Calendar views ask for a range; more events than this in one range are cut (newest kept).
MAX_EVENTS = 2000

EVENTS = CalendarEntityDescription(key="events", translation_key="events")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SecmonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One calendar per entry."""
    async_add_entities([SecmonEventsCalendar(entry)])


def calendar_event(event: StoredEvent) -> CalendarEvent:
    """A security event as a calendar item."""
    record = event.current
    start = dt_util.utc_from_timestamp(event.started)
    end = max(record.ended_at or start, start + MIN_DURATION)
    camera = record.message.camera_name or record.camera_id
    return CalendarEvent(
        start=start,
        end=end,
        summary=f"{camera}: {record.risk_level} risk ({record.risk_score})",
        description=record.message.summary,
        location=camera,
        uid=event.event_id,
    )


class SecmonEventsCalendar(SecmonEntity, CalendarEntity):
    """Security events of every camera of the entry; no device (it spans the cameras)."""

    entity_description = EVENTS

    def __init__(self, entry: SecmonConfigEntry) -> None:
        """The entry's calendar."""
        super().__init__(entry.runtime_data, "__calendar__")
        self._attr_unique_id = sidecar_unique_id(entry.entry_id, EVENTS.key)
        self._latest: CalendarEvent | None = None
        self._removed = False

    async def async_added_to_hass(self) -> None:
        """Show the newest event; follow new verdicts."""
        await super().async_added_to_hass()
        entry_id = self.coordinator.entry.entry_id

        @callback
        def ours(event_data: Mapping[str, Any]) -> bool:
            return event_data.get("config_entry_id") == entry_id

        for event_type in (EVENT_SECURITY, EVENT_SECURITY_UPDATED):
            self.async_on_remove(
                self.hass.bus.async_listen(event_type, self._async_on_verdict, event_filter=ours)
            )
        self.async_on_remove(self._async_mark_removed)
        await self._async_refresh()

    @callback
    def _async_mark_removed(self) -> None:
        self._removed = True

    async def _async_on_verdict(self, _event: Event[Mapping[str, Any]]) -> None:
        await self._async_refresh()
        if self._removed:
            # Removed while reading: writing now would schedule alarms nobody cancels.
            return
        self.async_write_ha_state()

    async def _async_refresh(self) -> None:
        page, _ = await self.hass.async_add_executor_job(
            search_events, self.coordinator.database, EventQuery(limit=1)
        )
        self._latest = calendar_event(page[0]) if page else None

    @property
    def event(self) -> CalendarEvent | None:
        """The newest security event."""
        return self._latest

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The security events that overlap the range, oldest first."""
        query = EventQuery(start=start_date - MIN_DURATION, end=end_date, limit=MAX_EVENTS)
        page, _ = await hass.async_add_executor_job(search_events, self.coordinator.database, query)
        items = [calendar_event(event) for event in reversed(page)]
        return [item for item in items if item.end > start_date and item.start < end_date]
