"""A verdict's context in HA: how unusual the batch was (`anomaly`, `baseline_days`) and the
owner's zones its detections were in, stored with the verdict and shown on the event entity, the
`secmon_event` bus event, the risk sensor, the timeline's websocket API (with a zone filter), the
search service and the Assist search tool.

Verdicts go in the way the sidecar's do (`async_on_verdict`: stored, then announced).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import llm
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.secmon.const import DOMAIN, EVENT_SECURITY
from custom_components.secmon.link.proto import secmon_pb2

from .test_alerts import CAMERA, _setup

EVENT_ENTITY = f"event.{CAMERA}_security_event"
RISK_SCORE = f"sensor.{CAMERA}_risk_score"


async def _verdict(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    event_id: str,
    *,
    zones: tuple[str, ...] = (),
    anomaly: float = 0.0,
    baseline_days: float = 0.0,
) -> None:
    message = secmon_pb2.Verdict(
        verdict_id=f"{event_id}:final",
        event_id=event_id,
        camera_id=CAMERA,
        camera_name="Front Door",
        risk_score=70,
        risk_level=secmon_pb2.RISK_LEVEL_HIGH,
        summary=f"Summary of {event_id}",
        labels=[secmon_pb2.LabelCount(label="person", count=1)],
        anomaly=anomaly,
        baseline_days=baseline_days,
        zones=list(zones),
    )
    message.started_at.FromDatetime(dt_util.utcnow())
    message.created_at.FromDatetime(dt_util.utcnow())
    assert await entry.runtime_data.async_on_verdict(message)
    await hass.async_block_till_done()


async def _columns(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, tuple[object, ...]]:
    def read() -> dict[str, tuple[object, ...]]:
        with entry.runtime_data.database.connection() as db:
            rows = db.execute(
                "SELECT event_id, anomaly, baseline_days, zones FROM verdicts"
            ).fetchall()
        return {r[0]: (r[1], r[2], json.loads(r[3])) for r in rows}

    return await hass.async_add_executor_job(read)


async def test_the_event_carries_zones_and_anomaly(
    hass: HomeAssistant, config_dir: Path, camera_root: Path
) -> None:
    """Stored in the verdict's columns; on the event entity, the bus event and the risk sensor;
    a verdict without context (baseline still learning, no zones) shows 0 and an empty list."""
    entry = await _setup(hass, camera_root)
    fired = async_capture_events(hass, EVENT_SECURITY)

    await _verdict(
        hass, entry, "porch", zones=("Porch", "Driveway"), anomaly=0.8374, baseline_days=9.04
    )
    assert (await _columns(hass, entry))["porch"] == (
        pytest.approx(0.8374),
        pytest.approx(9.04),
        ["Porch", "Driveway"],
    )
    event = hass.states.get(EVENT_ENTITY)
    assert event is not None
    assert event.attributes["event_type"] == "high"
    assert (
        event.attributes["zones"],
        event.attributes["anomaly"],
        event.attributes["baseline_days"],
    ) == (["Porch", "Driveway"], 0.84, 9.0)
    (bus,) = fired
    assert bus.data["event_id"] == "porch"
    assert (bus.data["zones"], bus.data["anomaly"], bus.data["baseline_days"]) == (
        ["Porch", "Driveway"],
        0.84,
        9.0,
    )
    score = hass.states.get(RISK_SCORE)
    assert score is not None
    assert (score.attributes["zones"], score.attributes["anomaly"]) == (["Porch", "Driveway"], 0.84)

    await _verdict(hass, entry, "learning")
    assert (await _columns(hass, entry))["learning"] == (0.0, 0.0, [])
    event = hass.states.get(EVENT_ENTITY)
    assert event is not None
    assert event.attributes["event_id"] == "learning"
    assert (event.attributes["zones"], event.attributes["anomaly"]) == ([], 0.0)
    assert fired[-1].data["zones"] == []
    score = hass.states.get(RISK_SCORE)
    assert score is not None
    assert (score.attributes["zones"], score.attributes["anomaly"]) == ([], 0.0)


async def test_events_are_found_by_zone(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """The timeline's list pages through one zone's events (any case), its subscription pushes
    only that zone's, and the search service and Assist tool filter by zone too."""
    entry = await _setup(hass, camera_root)
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/subscribe", "zone": "PORCH"})
    subscribed = await ws.receive_json()
    assert subscribed["success"]

    for event_id, zones in (
        ("p1", ("Porch",)),
        ("y1", ("Yard",)),
        ("p2", ("Driveway", "Porch")),
        ("none", ()),
        ("p3", ("porch",)),
    ):
        await _verdict(hass, entry, event_id, zones=zones, anomaly=0.5)
    pushed = [(await ws.receive_json())["event"]["event"] for _ in range(3)]
    assert [e["event_id"] for e in pushed] == ["p1", "p2", "p3"]
    assert pushed[1]["zones"] == ["Driveway", "Porch"]
    assert pushed[1]["anomaly"] == 0.5

    await ws.send_json_auto_id({"type": "secmon/events/list", "zone": "porch", "limit": 2})
    first = (await ws.receive_json())["result"]
    assert [e["event_id"] for e in first["events"]] == ["p3", "p2"]
    await ws.send_json_auto_id(
        {"type": "secmon/events/list", "zone": "porch", "before": first["next_before"]}
    )
    rest = (await ws.receive_json())["result"]
    assert [e["event_id"] for e in rest["events"]] == ["p1"]
    assert rest["next_before"] is None
    await ws.send_json_auto_id({"type": "secmon/events/list", "zone": "Street"})
    assert (await ws.receive_json())["result"]["events"] == []
    await ws.send_json_auto_id({"type": "secmon/events/list"})
    everything = (await ws.receive_json())["result"]["events"]
    assert [e["event_id"] for e in everything] == ["p3", "none", "p2", "y1", "p1"]

    response = await hass.services.async_call(
        DOMAIN,
        "search_events",
        {"zones": ["Yard", "driveway"]},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    found = response["events"]
    assert isinstance(found, list)
    assert sorted(e["event_id"] for e in found) == ["p2", "y1"]
    assert {e["event_id"]: e["zones"] for e in found}["y1"] == ["Yard"]

    api = await llm.async_get_api(
        hass,
        "secmon",
        llm.LLMContext(
            platform="test",
            context=Context(),
            user_prompt="anyone in the yard?",
            language="en",
            assistant="conversation",
            device_id=None,
        ),
    )
    yard = await api.async_call_tool(llm.ToolInput("secmon_search_events", {"zone": "yard"}))
    assert yard["events"] == [  # type: ignore[index]
        {
            "event_id": "y1",
            "camera": "Front Door",
            "started": yard["events"][0]["started"],  # type: ignore[index]
            "risk_level": "high",
            "risk_score": 70,
            "objects": {"person": 1},
            "zones": ["Yard"],
            "anomaly": 0.5,
            "summary": "Summary of y1",
            "feedback": None,
        }
    ]

    await ws.send_json_auto_id({"type": "unsubscribe_events", "subscription": subscribed["id"]})
    assert (await ws.receive_json())["success"]
