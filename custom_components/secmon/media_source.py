"""secmon's events in the media browser: Cameras → days → events (newest first) → the event's
snapshot, clip (when it has one) and frames.

Identifiers: `<entry>/<camera>`, `<entry>/<camera>/<YYYY-MM-DD>` (a day's newest events; its
further pages `<YYYY-MM-DD>~<page>`), `<entry>/<camera>/<YYYY-MM-DD>/<verdict>` and, to play,
`<entry>/snapshot/<verdict>`, `<entry>/clip/<verdict>` or `<entry>/frame/<n>/<verdict>` (the
verdict id last: it may hold any character). A day is a local-time day of HA's time zone; each
page of its events is read with one indexed range query.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial

from homeassistant.components.media_player.const import MediaClass
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .api.event_api import frame_path, loaded_entries
from .api.event_media_api import clip_path
from .api.snapshot_url import snapshot_path
from .const import DOMAIN
from .coordinator import SecmonConfigEntry
from .storage.event_search import (
    StoredEvent,
    event_cameras,
    get_verdict,
    list_events,
    stored_times,
)

IMAGE = "image/jpeg"
CLIP_TYPE = "video/mp4"
# Events listed per page of a day; a full page ends with a folder of the older ones.
PAGE_SIZE = 200
PAGE_MARK = "~"


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """secmon's media source."""
    return SecmonMediaSource(hass)


def _local_day(timestamp: float) -> date:
    return dt_util.as_local(dt_util.utc_from_timestamp(timestamp)).date()


def _day_bounds(day: date) -> tuple[float, float]:
    start = datetime.combine(day, datetime.min.time(), tzinfo=dt_util.get_default_time_zone())
    end = datetime.combine(
        day + timedelta(days=1), datetime.min.time(), tzinfo=dt_util.get_default_time_zone()
    )
    return start.timestamp(), end.timestamp()


def _directory(
    identifier: str,
    title: str,
    media_class: str,
    children: list[BrowseMediaSource] | None = None,
) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=media_class,
        media_content_type="",
        title=title,
        can_play=False,
        can_expand=True,
        children=children,
        children_media_class=MediaClass.DIRECTORY,
    )


def _image(identifier: str, title: str) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.IMAGE,
        media_content_type=IMAGE,
        title=title,
        can_play=True,
        can_expand=False,
    )


def _clip(identifier: str) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.VIDEO,
        media_content_type=CLIP_TYPE,
        title="Clip",
        can_play=True,
        can_expand=False,
    )


class SecmonMediaSource(MediaSource):
    """Security events of every loaded secmon entry."""

    name = "secmon"

    def __init__(self, hass: HomeAssistant) -> None:
        """For `hass`."""
        super().__init__(DOMAIN)
        self.hass = hass

    def _entry(self, entry_id: str) -> SecmonConfigEntry:
        for entry in loaded_entries(self.hass):
            if entry.entry_id == entry_id:
                return entry
        raise BrowseError(f"secmon entry {entry_id} is not loaded")

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A snapshot, clip or frame: its authenticated URL (media_source signs it)."""
        parts = item.identifier.split("/", 3)
        if len(parts) == 3 and parts[1] == "snapshot":
            return PlayMedia(snapshot_path(parts[0], parts[2]), IMAGE)
        if len(parts) == 3 and parts[1] == "clip":
            return PlayMedia(clip_path(parts[0], parts[2]), CLIP_TYPE)
        if len(parts) == 4 and parts[1] == "frame" and parts[2].isdigit():
            return PlayMedia(frame_path(parts[0], parts[3], int(parts[2])), IMAGE)
        raise Unresolvable(f"Not a secmon picture: {item.identifier}")

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Browse one level."""
        if not item.identifier:
            return await self._cameras()
        parts = item.identifier.split("/", 3)
        entry = self._entry(parts[0])
        if len(parts) == 2:
            return await self._days(entry, parts[1])
        day_part, paged, page_part = parts[2].partition(PAGE_MARK)
        try:
            day = date.fromisoformat(day_part)
            page = int(page_part) if paged else 0
        except ValueError as err:
            raise BrowseError(f"Not a day: {parts[2]}") from err
        if page < 0 or (paged and len(parts) == 4):
            raise BrowseError(f"Not a day: {parts[2]}")
        if len(parts) == 3:
            return await self._events(entry, parts[1], day, page)
        return await self._event(entry, parts[1], day, parts[3])

    async def _cameras(self) -> BrowseMediaSource:
        children: list[BrowseMediaSource] = []
        for entry in loaded_entries(self.hass):
            cameras = await self.hass.async_add_executor_job(
                event_cameras, entry.runtime_data.database
            )
            children.extend(
                _directory(f"{entry.entry_id}/{camera_id}", name, MediaClass.DIRECTORY)
                for camera_id, name in sorted(
                    ((c, _camera_name(entry, c, stored)) for c, stored in cameras.items()),
                    key=lambda c: c[1],
                )
            )
        return _directory("", "secmon", MediaClass.DIRECTORY, children)

    async def _days(self, entry: SecmonConfigEntry, camera_id: str) -> BrowseMediaSource:
        times = await self.hass.async_add_executor_job(
            stored_times, entry.runtime_data.database, camera_id
        )
        days: dict[date, int] = {}
        for stored in times:
            day = _local_day(stored)
            days[day] = days.get(day, 0) + 1
        children = [
            _directory(
                f"{entry.entry_id}/{camera_id}/{day.isoformat()}",
                f"{day.isoformat()} ({count} event{'s' if count != 1 else ''})",
                MediaClass.DIRECTORY,
            )
            for day, count in days.items()
        ]
        return _directory(
            f"{entry.entry_id}/{camera_id}",
            _camera_name(entry, camera_id),
            MediaClass.DIRECTORY,
            children,
        )

    async def _events(
        self, entry: SecmonConfigEntry, camera_id: str, day: date, page: int
    ) -> BrowseMediaSource:
        """One page of a day's events, newest first; a full page ends with the next one."""
        after, before = _day_bounds(day)
        events = await self.hass.async_add_executor_job(
            partial(
                list_events,
                entry.runtime_data.database,
                cameras=[camera_id],
                after=after,
                before=before,
                limit=PAGE_SIZE + 1,
                offset=page * PAGE_SIZE,
            )
        )
        base = f"{entry.entry_id}/{camera_id}/{day.isoformat()}"
        children = [
            _directory(
                f"{base}/{event.current.verdict_id}",
                _event_title(event),
                MediaClass.DIRECTORY,
            )
            for event in events[:PAGE_SIZE]
        ]
        first = page * PAGE_SIZE
        if len(events) > PAGE_SIZE:
            children.append(
                _directory(
                    f"{base}{PAGE_MARK}{page + 1}",
                    f"Older events (from {first + PAGE_SIZE + 1})",
                    MediaClass.DIRECTORY,
                )
            )
        title = f"{_camera_name(entry, camera_id)} {day.isoformat()}"
        if page:
            title += f" (from {first + 1})"
        return _directory(
            f"{base}{PAGE_MARK}{page}" if page else base,
            title,
            MediaClass.DIRECTORY,
            children,
        )

    async def _event(
        self, entry: SecmonConfigEntry, camera_id: str, day: date, verdict_id: str
    ) -> BrowseMediaSource:
        record = await self.hass.async_add_executor_job(
            get_verdict, entry.runtime_data.database, verdict_id
        )
        if record is None or record.camera_id != camera_id:
            raise BrowseError(f"No secmon event {verdict_id}")
        entry_id = entry.entry_id
        children = []
        if record.message.snapshot_frame_id:
            children.append(_image(f"{entry_id}/snapshot/{verdict_id}", "Snapshot"))
        clips = await self.hass.async_add_executor_job(
            entry.runtime_data.media.with_clips, [record.event_id]
        )
        if clips:
            children.append(_clip(f"{entry_id}/clip/{verdict_id}"))
        children.extend(
            _image(f"{entry_id}/frame/{n}/{verdict_id}", f"Frame {n + 1}")
            for n in range(len(record.message.frame_ids))
        )
        title = f"{record.risk_level} {record.risk_score}: {record.message.summary}"
        return _directory(
            f"{entry_id}/{camera_id}/{day.isoformat()}/{verdict_id}",
            title,
            MediaClass.DIRECTORY,
            children,
        )


def _camera_name(entry: SecmonConfigEntry, camera_id: str, stored: str | None = None) -> str:
    camera = entry.runtime_data.cameras.get(camera_id)
    return camera.name if camera is not None else stored or camera_id


def _event_title(event: StoredEvent) -> str:
    record = event.current
    when = dt_util.as_local(dt_util.utc_from_timestamp(event.stored_at)).strftime("%H:%M:%S")
    return f"{when} {record.risk_level} {record.risk_score}: {record.message.summary}"
