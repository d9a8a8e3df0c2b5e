"""Alerts: the announced security events that pass their camera's alert rules fire
`event.<cam>_alert` and `secmon_alert`; the rule's state lives in switch/select/number entities,
`secmon.snooze` and the options, and survives restarts. Verdicts enter where the sidecar stream
hands them over (the coordinator's `async_on_verdict`), so storage, the announcement rule and the
entities are the real ones; the sidecar itself is away. The clock is frozen and moved by hand."""

from __future__ import annotations

import itertools
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.components.event import ATTR_EVENT_TYPE
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util import slugify
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_mock_service,
    mock_restore_cache_with_extra_data,
)

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_ALERT_LABELS,
    CONF_CAMERA_ROOT,
    CONF_QUIET_END,
    CONF_QUIET_START,
    DOMAIN,
    EVENT_ALERT,
    EVENT_SECURITY,
)
from custom_components.secmon.link.proto import secmon_pb2

from .helpers import wait_for

# Port 9 (discard): nothing listens, the sidecar is away; verdicts are handed over directly.
AWAY = "127.0.0.1:9"
CAMERA = "front_door"
ALERT = f"event.{CAMERA}_alert"
ARMED = f"switch.{CAMERA}_alerts"
LEVEL = f"select.{CAMERA}_alert_level"
COOLDOWN = f"number.{CAMERA}_alert_cooldown"
HOUSE = "switch.secmon_alerts"
LEVELS = {
    "low": secmon_pb2.RISK_LEVEL_LOW,
    "medium": secmon_pb2.RISK_LEVEL_MEDIUM,
    "high": secmon_pb2.RISK_LEVEL_HIGH,
    "critical": secmon_pb2.RISK_LEVEL_CRITICAL,
}
SCORES = {"low": 10, "medium": 40, "high": 70, "critical": 90}
_ids = itertools.count(1)


async def _setup(hass: HomeAssistant, camera_root: Path, **options: Any) -> MockConfigEntry:
    (camera_root / "Front Door").mkdir(exist_ok=True)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=AWAY,
        data={CONF_ADDRESS: AWAY, CONF_CAMERA_ROOT: str(camera_root)},
        options=options,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: hass.states.get(ALERT) is not None, "alert entity")
    return entry


@pytest.fixture
async def entry(hass: HomeAssistant, config_dir: Path, camera_root: Path) -> MockConfigEntry:
    """Set up with default alert options, one camera."""
    return await _setup(hass, camera_root)


async def verdict(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    level: str,
    *,
    event_id: str | None = None,
    fast_path: bool = False,
    labels: tuple[str, ...] = ("person",),
    snapshot_frame_id: str = "",
    caption: str = "",
) -> str:
    """Hand a verdict over as the stream does; returns its event id."""
    event_id = event_id or f"event-{next(_ids)}"
    message = secmon_pb2.Verdict(
        verdict_id=f"verdict-{next(_ids)}",
        event_id=event_id,
        camera_id=CAMERA,
        camera_name="Front Door",
        risk_score=SCORES[level],
        risk_level=LEVELS[level],
        summary=f"A {level} event",
        fast_path=fast_path,
        labels=[secmon_pb2.LabelCount(label=label, count=1) for label in labels],
        snapshot_frame_id=snapshot_frame_id,
        caption=caption,
    )
    message.started_at.FromDatetime(dt_util.utcnow())
    message.created_at.FromDatetime(dt_util.utcnow())
    assert await entry.runtime_data.async_on_verdict(message)
    await hass.async_block_till_done()
    return event_id


def alert_state(hass: HomeAssistant) -> State:
    state = hass.states.get(ALERT)
    assert state is not None
    return state


@pytest.mark.usefixtures("entry")
async def test_entities_and_defaults(hass: HomeAssistant) -> None:
    """Per camera: armed switch, level high, cooldown 120 s, alert event; house-wide switch."""
    assert hass.states.get(ARMED).state == STATE_ON  # type: ignore[union-attr]
    assert hass.states.get(LEVEL).state == "high"  # type: ignore[union-attr]
    assert float(hass.states.get(COOLDOWN).state) == 120  # type: ignore[union-attr]
    house = hass.states.get(HOUSE)
    assert house is not None
    assert house.state == STATE_ON
    assert house.attributes["snoozed_until"] is None
    assert alert_state(hass).state == "unknown"


async def test_level_once_per_event_and_cooldown(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    announced: list[Event] = async_capture_events(hass, EVENT_SECURITY)

    await verdict(hass, entry, "medium")
    assert len(announced) == 1
    assert alerts == [], "below the camera's level (high)"

    first = await verdict(hass, entry, "high")
    assert [e.data["event_id"] for e in alerts] == [first]
    assert alerts[0].data["entity_id"] == f"event.{CAMERA}_security_event"
    assert alerts[0].data["risk_level"] == "high"
    state = alert_state(hass)
    assert state.attributes[ATTR_EVENT_TYPE] == "high"
    assert state.attributes["event_id"] == first
    fired_at = state.state

    # The same event again (its batch verdict, same level): once per event.
    freezer.tick(timedelta(seconds=300))
    await verdict(hass, entry, "high", event_id=first)
    assert len(alerts) == 1

    # A new event within the cooldown is announced but does not alert.
    second = await verdict(hass, entry, "critical")
    assert announced[-1].data["event_id"] == second
    freezer.tick(timedelta(seconds=60))
    third = await verdict(hass, entry, "high")
    assert [e.data["event_id"] for e in alerts] == [first, second]
    assert third not in {e.data["event_id"] for e in alerts}
    assert alert_state(hass).state != fired_at

    # A shorter cooldown from the number entity lets the next one through.
    await hass.services.async_call(
        "number", "set_value", {"entity_id": COOLDOWN, "value": 30}, blocking=True
    )
    freezer.tick(timedelta(seconds=31))
    fourth = await verdict(hass, entry, "high")
    assert alerts[-1].data["event_id"] == fourth

    # Lowering the level lets medium events alert.
    await hass.services.async_call(
        "select", "select_option", {"entity_id": LEVEL, "option": "medium"}, blocking=True
    )
    freezer.tick(timedelta(seconds=31))
    fifth = await verdict(hass, entry, "medium")
    assert alerts[-1].data["event_id"] == fifth
    assert len(alerts) == 4


async def test_escalation_alerts_once_the_level_is_reached(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A fast-path verdict below the level stays quiet; its batch verdict raising the event to
    critical alerts (flagged as an update); a third, lower verdict of the event does not."""
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    event_id = await verdict(hass, entry, "medium", fast_path=True)
    assert alerts == []
    freezer.tick(timedelta(seconds=20))
    await verdict(hass, entry, "critical", event_id=event_id)
    assert len(alerts) == 1
    assert alerts[0].data["is_update"] is True
    assert alerts[0].data["risk_level"] == "critical"
    freezer.tick(timedelta(seconds=600))
    await verdict(hass, entry, "high", event_id=event_id)
    assert len(alerts) == 1


async def test_disarmed_camera_and_house(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await hass.services.async_call("switch", "turn_off", {"entity_id": ARMED}, blocking=True)
    await verdict(hass, entry, "critical")
    assert alerts == []
    await hass.services.async_call("switch", "turn_on", {"entity_id": ARMED}, blocking=True)
    await hass.services.async_call("switch", "turn_off", {"entity_id": HOUSE}, blocking=True)
    assert hass.states.get(HOUSE).state == STATE_OFF  # type: ignore[union-attr]
    await verdict(hass, entry, "critical")
    assert alerts == []
    await hass.services.async_call("switch", "turn_on", {"entity_id": HOUSE}, blocking=True)
    await verdict(hass, entry, "critical")
    assert len(alerts) == 1


async def test_snooze_house_and_camera(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await hass.services.async_call(DOMAIN, "snooze", {"duration": {"hours": 1}}, blocking=True)
    until = hass.states.get(HOUSE).attributes["snoozed_until"]  # type: ignore[union-attr]
    assert dt_util.parse_datetime(until) == dt_util.utcnow() + timedelta(hours=1)
    await verdict(hass, entry, "critical")
    assert alerts == []
    freezer.tick(timedelta(minutes=61))
    await verdict(hass, entry, "critical")
    assert len(alerts) == 1

    # Per camera, by its camera entity; 0 ends the snooze.
    await hass.services.async_call(
        DOMAIN,
        "snooze",
        {"duration": {"minutes": 30}, "cameras": [f"camera.{CAMERA}"]},
        blocking=True,
    )
    assert hass.states.get(ARMED).attributes["snoozed_until"] is not None  # type: ignore[union-attr]
    freezer.tick(timedelta(minutes=5))
    await verdict(hass, entry, "critical")
    assert len(alerts) == 1
    await hass.services.async_call(
        DOMAIN, "snooze", {"duration": 0, "cameras": [f"camera.{CAMERA}"]}, blocking=True
    )
    assert hass.states.get(ARMED).attributes["snoozed_until"] is None  # type: ignore[union-attr]
    await verdict(hass, entry, "critical")
    assert len(alerts) == 2

    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "snooze",
            {"duration": {"minutes": 5}, "cameras": ["switch.secmon_alerts"]},
            blocking=True,
        )


async def test_labels_and_quiet_hours(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, freezer: FrozenDateTimeFactory
) -> None:
    """Only events with an alert label alert; within quiet hours (crossing midnight) only
    critical ones do."""
    await hass.config.async_set_time_zone("UTC")
    freezer.move_to(datetime(2026, 12, 7, 12, 0, tzinfo=dt_util.UTC))
    entry = await _setup(
        hass,
        camera_root,
        **{CONF_ALERT_LABELS: ["person"], CONF_QUIET_START: "22:00:00", CONF_QUIET_END: "06:30"},
    )
    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await verdict(hass, entry, "critical", labels=("cat",))
    assert alerts == []
    await verdict(hass, entry, "high", labels=("cat", "person"))
    assert len(alerts) == 1

    freezer.move_to(datetime(2026, 12, 7, 23, 0, tzinfo=dt_util.UTC))
    await verdict(hass, entry, "high")
    assert len(alerts) == 1, "quiet hours"
    await verdict(hass, entry, "critical")
    assert len(alerts) == 2, "critical alerts in quiet hours"
    freezer.move_to(datetime(2026, 12, 8, 6, 29, tzinfo=dt_util.UTC))
    await verdict(hass, entry, "high")
    assert len(alerts) == 2, "quiet hours until 06:30"
    freezer.move_to(datetime(2026, 12, 8, 6, 30, tzinfo=dt_util.UTC))
    await verdict(hass, entry, "high")
    assert len(alerts) == 3


async def test_alert_state_survives_restart(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, freezer: FrozenDateTimeFactory
) -> None:
    """Armed, level, cooldown, snoozes and the last alert (the cooldown) are restored."""
    freezer.move_to(datetime(2026, 12, 7, 12, 0, tzinfo=dt_util.UTC))
    now = dt_util.utcnow()
    snoozed = (now + timedelta(minutes=10)).isoformat()
    # One call: each call replaces the whole restore cache.
    mock_restore_cache_with_extra_data(
        hass,
        [
            (State(ARMED, STATE_ON, {"snoozed_until": snoozed}), {}),
            (State(HOUSE, STATE_OFF, {"snoozed_until": None}), {}),
            (State(LEVEL, "low"), {}),
            (
                State(ALERT, (now - timedelta(seconds=30)).isoformat(), {"event_type": "high"}),
                {"last_event_type": "high", "last_event_attributes": {"event_id": "earlier"}},
            ),
            (
                State(COOLDOWN, "3600"),
                {
                    "native_value": 3600.0,
                    "native_min_value": 0.0,
                    "native_max_value": 86400.0,
                    "native_step": 1.0,
                    "native_unit_of_measurement": "s",
                },
            ),
        ],
    )
    entry = await _setup(hass, camera_root)
    assert hass.states.get(HOUSE).state == STATE_OFF  # type: ignore[union-attr]
    assert hass.states.get(LEVEL).state == "low"  # type: ignore[union-attr]
    assert float(hass.states.get(COOLDOWN).state) == 3600  # type: ignore[union-attr]
    assert hass.states.get(ARMED).attributes["snoozed_until"] == snoozed  # type: ignore[union-attr]
    alerts = entry.runtime_data.alerts
    assert alerts.camera(CAMERA).last_alert_at == now - timedelta(seconds=30)

    events: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await hass.services.async_call("switch", "turn_on", {"entity_id": HOUSE}, blocking=True)
    freezer.tick(timedelta(minutes=11))
    await verdict(hass, entry, "low")
    assert events == [], "within the restored 1 h cooldown of the restored last alert"
    freezer.tick(timedelta(minutes=50))
    await verdict(hass, entry, "low")
    assert len(events) == 1


BLUEPRINT = (
    Path(__file__).resolve().parents[2] / "blueprints/automation/secmon/notify_on_alerts.yaml"
)


async def use_alerts_blueprint(
    hass: HomeAssistant, config_dir: Path, *automations: dict[str, Any]
) -> None:
    """Install the shipped blueprint and create automations from it."""
    target = config_dir / "blueprints" / "automation" / "secmon" / BLUEPRINT.name
    target.parent.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target)
    assert await async_setup_component(hass, "automation", {"automation": list(automations)})
    await hass.async_block_till_done()
    for automation in automations:
        state = hass.states.get(f"automation.{slugify(automation['alias'])}")
        assert state is not None and state.state == STATE_ON, state


def alerts_automation(cameras: list[str], **targets: Any) -> dict[str, Any]:
    """An automation made from the blueprint for `cameras` (all if empty)."""
    return {
        "alias": f"alerts {len(cameras)} {'_'.join(cameras) or 'all'}",
        "use_blueprint": {
            "path": f"secmon/{BLUEPRINT.name}",
            "input": {"cameras": cameras, **targets},
        },
    }


async def test_notify_on_alerts_blueprint(
    hass: HomeAssistant, entry: MockConfigEntry, config_dir: Path, freezer: FrozenDateTimeFactory
) -> None:
    """The shipped blueprint notifies a companion app once per alert (not per announced event),
    for the chosen cameras, with the alert's snapshot, tag and buttons."""
    calls = async_mock_service(hass, "notify", "mobile_app_test_phone")
    device = er.async_get(hass).async_get(ALERT)
    assert device is not None
    phone = {"notify_service": "notify.mobile_app_test_phone"}
    await use_alerts_blueprint(
        hass,
        config_dir,
        alerts_automation([], **phone),
        alerts_automation([device.device_id], **phone),
        alerts_automation(["other"], **phone),
    )

    alerts: list[Event] = async_capture_events(hass, EVENT_ALERT)
    await verdict(hass, entry, "medium")
    event_id = await verdict(hass, entry, "high")
    freezer.tick(timedelta(seconds=10))
    await verdict(hass, entry, "critical")  # within the cooldown
    await hass.async_block_till_done()
    assert len(calls) == 2
    freezer.tick(timedelta(minutes=10))
    await verdict(hass, entry, "critical")
    await hass.async_block_till_done()
    assert len(calls) == 4
    assert calls[-1].data["data"]["push"]["interruption-level"] == "critical"
    assert calls[-1].data["data"]["channel"] == "alarm_stream"
    data = calls[0].data
    assert data["title"] == "Front Door: high risk (70)"
    assert data["message"] == "A high event"
    assert data["data"]["image"] == alerts[0].data["snapshot_url"]
    assert data["data"]["tag"] == f"secmon-{event_id}"
    assert [a["action"] for a in data["data"]["actions"]] == [
        f"SECMON_FALSE_ALARM:{event_id}",
        f"SECMON_SNOOZE_1H:{CAMERA}",
        "URI",
    ]
    # "Open" opens the event's own picture (its signed URL) in the app.
    assert data["data"]["actions"][2]["uri"] == alerts[0].data["snapshot_url"]
    assert data["data"]["push"]["interruption-level"] == "time-sensitive"
    assert data["data"]["channel"] == "secmon"


async def test_notify_on_alerts_blueprint_other_targets(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    config_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Notify entities and actions that take no `data` (persistent_notification.create) get the
    title and message only, for every alert."""
    assert await async_setup_component(hass, "persistent_notification", {})
    sent = async_mock_service(hass, "notify", "send_message")
    await use_alerts_blueprint(
        hass,
        config_dir,
        alerts_automation(
            [],
            notify_entities=["notify.kitchen_display"],
            notify_service="persistent_notification.create",
        ),
    )
    await verdict(hass, entry, "high")
    await hass.async_block_till_done()
    title = "Front Door: high risk (70)"
    assert [call.data for call in sent] == [
        {"entity_id": ["notify.kitchen_display"], "title": title, "message": "A high event"}
    ]
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    assert [(n["title"], n["message"]) for n in notifications.values()] == [(title, "A high event")]
    assert "extra keys" not in caplog.text
    assert "Error" not in caplog.text
