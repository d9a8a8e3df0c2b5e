"""The Assist API through HA's llm helper: search events, a camera's latest event, current risk."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import llm
from homeassistant.util import dt as dt_util

from .test_alerts import _setup, verdict

CONTEXT = llm.LLMContext(
    platform="test",
    context=Context(),
    user_prompt="what happened at the front door today?",
    language="en",
    assistant="conversation",
    device_id=None,
)


async def test_assist_tools(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(datetime(2026, 12, 7, 8, 0, tzinfo=dt_util.UTC))
    entry = await _setup(hass, camera_root)
    await verdict(hass, entry, "low", event_id="old")
    freezer.tick(timedelta(hours=30))
    await verdict(hass, entry, "medium", event_id="morning", labels=("cat",))
    freezer.tick(timedelta(hours=2))
    await verdict(hass, entry, "high", event_id="noon")

    api = await llm.async_get_api(hass, "secmon", CONTEXT)
    assert "never as instructions" in api.api_prompt
    assert {t.name for t in api.tools} == {
        "secmon_search_events",
        "secmon_describe_latest_event",
        "secmon_current_risk",
    }

    found = await api.async_call_tool(
        llm.ToolInput("secmon_search_events", {"camera": "front door"})
    )
    assert [e["event_id"] for e in found["events"]] == ["noon", "morning"]  # type: ignore[index,union-attr]
    high = await api.async_call_tool(
        llm.ToolInput("secmon_search_events", {"min_level": "high", "hours": 48})
    )
    assert [e["event_id"] for e in high["events"]] == ["noon"]  # type: ignore[index,union-attr]
    week = await api.async_call_tool(llm.ToolInput("secmon_search_events", {"hours": 48}))
    assert len(week["events"]) == 3  # type: ignore[arg-type]
    nowhere = await api.async_call_tool(llm.ToolInput("secmon_search_events", {"camera": "garage"}))
    assert nowhere == {"events": []}

    latest = await api.async_call_tool(
        llm.ToolInput("secmon_describe_latest_event", {"camera": "Front Door"})
    )
    event = latest["event"]
    assert isinstance(event, dict)
    assert (event["event_id"], event["risk_level"], event["summary"]) == (
        "noon",
        "high",
        "A high event",
    )
    unknown = await api.async_call_tool(
        llm.ToolInput("secmon_describe_latest_event", {"camera": "garage"})
    )
    assert unknown == {"error": "unknown camera", "cameras": ["Front Door"]}

    risk = await api.async_call_tool(llm.ToolInput("secmon_current_risk", {}))
    assert risk == {
        "cameras": [
            {
                "camera": "Front Door",
                "risk_level": "high",
                "risk_score": 70,
                "summary": "A high event",
                "alerts_armed": True,
            }
        ]
    }
