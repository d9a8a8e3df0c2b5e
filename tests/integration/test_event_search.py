"""`secmon.search_events` and `secmon.get_event` over the stored verdicts: filters, paging, one
event per event id shown by its current verdict."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.secmon.const import DOMAIN

from .test_alerts import CAMERA, _setup, verdict

CALENDAR = "calendar.secmon_events"


@pytest.fixture
async def entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """An entry with five events an hour apart, from 08:00 UTC; the third has two verdicts."""
    freezer.move_to(datetime(2026, 12, 7, 8, 0, tzinfo=dt_util.UTC))
    config_entry = await _setup(hass, camera_root)
    for n, (level, labels) in enumerate(
        [
            ("low", ("cat",)),
            ("medium", ("person",)),
            ("medium", ("person", "car")),
            ("high", ("person",)),
            ("critical", ("person",)),
        ]
    ):
        event_id = await verdict(
            hass,
            config_entry,
            level,
            event_id=f"e{n}",
            labels=labels,
            fast_path=n == 2,
            caption="A courier holding a parcel at the gate" if n == 1 else "",
        )
        if n == 2:
            freezer.tick(timedelta(seconds=30))
            await verdict(hass, config_entry, "high", event_id=event_id, labels=labels)
        freezer.tick(timedelta(hours=1))
    return config_entry


async def search(hass: HomeAssistant, **data: object) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, "search_events", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


def ids(response: dict[str, object]) -> list[str]:
    events = response["events"]
    assert isinstance(events, list)
    return [e["event_id"] for e in events]


@pytest.mark.usefixtures("entry")
async def test_search_filters(hass: HomeAssistant) -> None:
    everything = await search(hass)
    assert ids(everything) == ["e4", "e3", "e2", "e1", "e0"]
    assert everything["total"] == 5
    assert everything["next_offset"] is None
    events = everything["events"]
    assert isinstance(events, list)
    e2 = events[2]
    # The batch verdict describes the event, not the earlier fast-path one.
    assert e2["risk_level"] == "high"
    assert e2["fast_path"] is False
    assert e2["verdict_count"] == 2
    assert e2["camera_id"] == CAMERA

    assert ids(await search(hass, min_level="high")) == ["e4", "e3", "e2"]
    assert ids(await search(hass, labels=["car", "cat"])) == ["e2", "e0"]
    assert ids(await search(hass, text="CRITICAL event")) == ["e4"]
    # Free text also matches an earlier verdict of the event.
    assert ids(await search(hass, text="medium")) == ["e2", "e1"]
    # And the scene captions the image models wrote.
    assert ids(await search(hass, text="PARCEL courier")) == ["e1"]
    assert ids(await search(hass, text="parcel medium")) == ["e1"]
    assert ids(
        await search(hass, start="2026-12-07T09:30:00+00:00", end="2026-12-07T11:30:00+00:00")
    ) == ["e3", "e2"]
    assert ids(await search(hass, cameras=[f"camera.{CAMERA}"], min_level="critical")) == ["e4"]
    # A time without a zone is the home's (UTC here).
    await hass.config.async_set_time_zone("UTC")
    assert ids(await search(hass, start="2026-12-07T11:30:00")) == ["e4"]
    with pytest.raises(ServiceValidationError):
        await search(hass, cameras=["switch.secmon_alerts"])


@pytest.mark.usefixtures("entry")
async def test_search_pages(hass: HomeAssistant) -> None:
    first = await search(hass, limit=2)
    assert ids(first) == ["e4", "e3"]
    assert first["next_offset"] == 2
    second = await search(hass, limit=2, offset=2)
    assert ids(second) == ["e2", "e1"]
    last = await search(hass, limit=2, offset=4)
    assert ids(last) == ["e0"]
    assert last["next_offset"] is None


@pytest.mark.usefixtures("entry")
async def test_get_event(hass: HomeAssistant) -> None:
    response = await hass.services.async_call(
        DOMAIN, "get_event", {"event_id": "e2"}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["risk_level"] == "high"
    verdicts = response["verdicts"]
    assert isinstance(verdicts, list)
    assert [(v["fast_path"], v["risk_level"]) for v in verdicts] == [
        (True, "medium"),
        (False, "high"),
    ]
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "get_event", {"event_id": "nope"}, blocking=True, return_response=True
        )


async def test_calendar(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """`calendar.secmon_events` lists the events of a range and shows the newest one, live."""
    state = hass.states.get(CALENDAR)
    assert state is not None
    assert state.attributes["message"] == "Front Door: critical risk (90)"
    assert state.state == "off"
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {
            "entity_id": CALENDAR,
            "start_date_time": "2026-12-07T09:30:00+00:00",
            "end_date_time": "2026-12-07T11:30:00+00:00",
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    items = response[CALENDAR]["events"]  # type: ignore[index]
    assert [(i["summary"], i["description"]) for i in items] == [
        ("Front Door: high risk (70)", "A high event"),
        ("Front Door: high risk (70)", "A high event"),
    ]
    assert dt_util.parse_datetime(items[0]["start"]) == datetime(
        2026, 12, 7, 10, 0, tzinfo=dt_util.UTC
    )

    await verdict(hass, entry, "medium", event_id="live")
    await hass.async_block_till_done()
    state = hass.states.get(CALENDAR)
    assert state is not None
    assert state.attributes["message"] == "Front Door: medium risk (40)"
    assert state.state == "on"


async def test_feedback(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """`secmon.feedback` stores the owner's word with the event; it shows on the event."""
    told = async_capture_events(hass, "secmon_feedback")
    await hass.services.async_call(
        DOMAIN,
        "feedback",
        {"event_id": "e3", "verdict": "false_alarm", "note": "the neighbour"},
        blocking=True,
    )
    response = await hass.services.async_call(
        DOMAIN, "get_event", {"event_id": "e3"}, blocking=True, return_response=True
    )
    assert response is not None
    feedback = response["feedback"]
    assert isinstance(feedback, dict)
    assert (feedback["verdict"], feedback["note"]) == ("false_alarm", "the neighbour")
    assert [e.data["event_id"] for e in told] == ["e3"]
    # Changing one's mind replaces it.
    await hass.services.async_call(
        DOMAIN, "feedback", {"event_id": "e3", "verdict": "confirmed"}, blocking=True
    )
    page = await search(hass, limit=2)
    events = page["events"]
    assert isinstance(events, list)
    assert events[1]["feedback"]["verdict"] == "confirmed"
    assert events[0]["feedback"] is None
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN, "feedback", {"event_id": "nope", "verdict": "confirmed"}, blocking=True
        )
