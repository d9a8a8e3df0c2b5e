"""secmon's events in the media browser, through HA's media_source: Cameras → days → events →
snapshot and frames, newest first; a day with thousands of events browses in one query."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from homeassistant.components import media_source
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.media_source import PAGE_SIZE
from custom_components.secmon.verdicts.records import VerdictRecord

from .test_event_api import _frame_file, _verdict

MANY = 2000


async def test_browse_cameras_days_events_pictures(
    hass: HomeAssistant,
    camera_root: Path,
    mock_config_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """Each level lists what it should, newest first; pictures resolve to authenticated URLs
    that serve the event's own images."""
    (camera_root / "Garage").mkdir()
    assert await async_setup_component(hass, "media_source", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data
    frame = await _frame_file(hass, mock_config_entry, tmp_path, "frame-m")
    assert await coordinator.async_on_verdict(_verdict("older"))
    assert await coordinator.async_on_verdict(_verdict("garage-1", "garage"))
    assert await coordinator.async_on_verdict(
        _verdict("newer", score=90, frames=("frame-m", "frame-m"), snapshot="frame-m")
    )
    entry_id = mock_config_entry.entry_id

    root = await media_source.async_browse_media(hass, "media-source://secmon")
    assert [c.title for c in root.children] == ["Front Door", "Garage"]

    camera = await media_source.async_browse_media(hass, root.children[0].media_content_id)
    today = dt_util.now().date().isoformat()
    assert [c.title for c in camera.children] == [f"{today} (2 events)"]

    day = await media_source.async_browse_media(hass, camera.children[0].media_content_id)
    assert [c.title.split(" ", 1)[1] for c in day.children] == [
        "critical 90: Summary of newer",
        "medium 40: Summary of older",
    ]

    event = await media_source.async_browse_media(hass, day.children[0].media_content_id)
    # The event's clip (made from its frames) is listed too; test_event_media plays it.
    assert [c.title for c in event.children] == ["Snapshot", "Clip", "Frame 1", "Frame 2"]
    assert all(c.can_play for c in event.children)
    pictures = [c for c in event.children if c.title != "Clip"]

    client = await hass_client()
    for child, expected in zip(pictures, [None, frame, frame], strict=True):
        played = await media_source.async_resolve_media(hass, child.media_content_id, None)
        assert played.mime_type == "image/jpeg"
        response = await client.get(played.url)
        assert response.status == 200
        body = await response.read()
        assert body[:2] == b"\xff\xd8"
        if expected is not None:
            assert body == expected

    for bad in (
        "media-source://secmon/no-such-entry/front_door",
        f"media-source://secmon/{entry_id}/front_door/not-a-day",
        f"media-source://secmon/{entry_id}/garage/{today}/newer:final",
    ):
        with pytest.raises(BrowseError):
            await media_source.async_browse_media(hass, bad)
    with pytest.raises(media_source.Unresolvable):
        await media_source.async_resolve_media(
            hass, f"media-source://secmon/{entry_id}/front_door", None
        )


async def test_a_day_with_thousands_of_events(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """Thousands of events of one camera in one day: the day lists them newest first in pages
    (one query each), each full page ending with a folder of the older ones."""
    assert await async_setup_component(hass, "media_source", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    store = mock_config_entry.runtime_data.verdicts

    def fill() -> None:
        for n in range(MANY):
            store.add(VerdictRecord.from_message(_verdict(f"many{n:05d}")), None)

    await hass.async_add_executor_job(fill)
    base = f"media-source://secmon/{mock_config_entry.entry_id}/front_door"
    started = time.perf_counter()
    camera = await media_source.async_browse_media(hass, base)
    day = await media_source.async_browse_media(hass, camera.children[0].media_content_id)
    elapsed = time.perf_counter() - started
    assert camera.children[0].title.endswith(f"({MANY} events)")
    titles: list[str] = []
    page = day
    pages = 1
    while True:
        *events, last = page.children
        if last.title.startswith("Older events"):
            assert len(events) == PAGE_SIZE
            assert last.title == f"Older events (from {len(titles) + PAGE_SIZE + 1})"
            titles.extend(e.title for e in events)
            page = await media_source.async_browse_media(hass, last.media_content_id)
            pages += 1
            continue
        titles.extend(e.title for e in page.children)
        break
    assert pages == -(-MANY // PAGE_SIZE)
    assert len(titles) == MANY
    # Newest first over all pages, each event once.
    assert [t.rsplit(" ", 1)[1] for t in titles] == [f"many{n:05d}" for n in reversed(range(MANY))]
    # An event on a later page opens like any other.
    event = await media_source.async_browse_media(hass, page.children[0].media_content_id)
    assert event.title.endswith(page.children[0].title.rsplit(" ", 1)[1])
    for bad in ("~-1", "~x"):
        with pytest.raises(BrowseError):
            await media_source.async_browse_media(
                hass, f"{camera.children[0].media_content_id}{bad}"
            )
    print(f"browsed the first page of a day of {MANY} events in {elapsed * 1000:.0f} ms")
