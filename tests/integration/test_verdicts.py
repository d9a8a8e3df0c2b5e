"""Verdicts from a real sidecar (tiny random detector and GGUF, short event windows) become risk
sensors, event entity firings, bus events, logbook lines and snapshots; exactly once."""

from __future__ import annotations

import io
import itertools
import shutil
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components import persistent_notification
from homeassistant.components.event import ATTR_EVENT_TYPE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from PIL import Image
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_mock_service,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    DOMAIN,
    EVENT_SECURITY,
    EVENT_SECURITY_UPDATED,
)
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.logbook import describe_verdict
from custom_components.secmon.storage.verdict_store import HistoryEntry
from custom_components.secmon.verdicts.enrichment import ENRICHMENT_KEYS
from custom_components.secmon.verdicts.records import VerdictRecord

from .helpers import async_wait_for, frame_id_of, image_bytes, state_of, wait_for, write_image
from .sidecar_process import SidecarProcess
from .verdict_helpers import async_camera_history, sidecar_status, verdict_options

_names = itertools.count(1)
# Image entities rotate their access token; not part of the restored state.
VOLATILE = {"entity_picture", "access_token"}


@pytest.fixture(scope="module")
def sidecar() -> Generator[SidecarProcess]:
    """This module's sidecar: batches close 1 s after the last detection, unacknowledged
    verdicts are re-sent after 1 s. Tests use cameras of their own, so one module-wide process
    serves them all."""
    process = SidecarProcess(
        extra_args=("--batch-idle-s", "1", "--batch-window-s", "5", "--verdict-resend-s", "1")
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def camera_name(camera_root: Path) -> str:
    """A camera folder no other test of the module uses (the sidecar's batches are per camera)."""
    name = f"Porch {next(_names)}"
    (camera_root / name).mkdir()
    return name


def camera_id(name: str) -> str:
    """The normalised id of a camera folder name."""
    return name.lower().replace(" ", "_")


def make_entry(
    hass: HomeAssistant, sidecar: SidecarProcess, camera_root: Path, **options: Any
) -> MockConfigEntry:
    """An entry for the module's sidecar with short event windows (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options=verdict_options(**options),
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, sidecar: SidecarProcess
) -> MockConfigEntry:
    """Set up, fast path off."""
    config_entry = make_entry(hass, sidecar, camera_root)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    return config_entry


async def drop_frames(
    hass: HomeAssistant, entry: MockConfigEntry, folder: Path, seeds: list[int]
) -> list[secmon_pb2.FrameResult]:
    """Drop images into a camera folder; wait for and return their results."""
    images = [image_bytes(seed) for seed in seeds]
    for seed, data in zip(seeds, images, strict=True):
        write_image(folder / f"{seed}.jpg", data)
    queue = entry.runtime_data.queue
    ids = [frame_id_of(camera_id(folder.name), data) for data in images]
    await wait_for(
        hass, lambda: all(queue.result(i) is not None for i in ids), "results of dropped frames"
    )
    return [secmon_pb2.FrameResult.FromString(queue.result(i) or b"") for i in ids]


async def wait_for_verdicts(
    hass: HomeAssistant, entry: MockConfigEntry, camera: str, count: int
) -> list[HistoryEntry]:
    """Wait until `count` verdicts of the camera are shown (each sends one of secmon's bus events,
    after the sensors are updated); return the stored ones, oldest first."""
    shown: list[Event] = []

    @callback
    def record(event: Event) -> None:
        if event.data["camera_id"] == camera:
            shown.append(event)

    unsubscribe = [
        hass.bus.async_listen(EVENT_SECURITY, record),
        hass.bus.async_listen(EVENT_SECURITY_UPDATED, record),
    ]
    try:
        stored = await async_camera_history(hass, entry, camera)
        already = len(stored)
        await wait_for(hass, lambda: already + len(shown) >= count, f"{count} verdict(s)")
    finally:
        for remove in unsubscribe:
            remove()
    return await async_camera_history(hass, entry, camera)


def of_camera(events: list[Event], camera: str) -> list[Event]:
    """The captured bus events of one camera."""
    return [e for e in events if e.data["camera_id"] == camera]


async def test_verdict_reaches_entities(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    camera_root: Path,
    camera_name: str,
) -> None:
    """A batch closes on idle; its verdict shows up as risk sensors, an event entity firing, a
    bus event, a logbook line, a snapshot, sidecar sensors and diagnostics."""
    assert await async_setup_component(hass, "diagnostics", {})
    announced = async_capture_events(hass, EVENT_SECURITY)
    updated = async_capture_events(hass, EVENT_SECURITY_UPDATED)
    cam = camera_id(camera_name)
    results = await drop_frames(hass, entry, camera_root / camera_name, [1, 2])
    assert all(r.batch_id for r in results), "frames with detections join a batch"

    (stored,) = await wait_for_verdicts(hass, entry, cam, 1)
    record = stored.record
    assert stored.announced
    assert record.verdict_id == f"{results[0].batch_id}:final"
    assert not record.fast_path and not record.fallback
    assert record.message.close_reason == "idle"
    # Every detection of both frames is counted in the verdict's labels.
    assert record.labels == dict(Counter(d.label for r in results for d in r.detections))

    # Risk sensors.
    score = hass.states.get(f"sensor.{cam}_risk_score")
    assert score is not None
    assert score.state == str(record.risk_score)
    assert score.attributes["state_class"] == "measurement"
    assert score.attributes["event_id"] == record.event_id
    level = hass.states.get(f"sensor.{cam}_risk_level")
    assert level is not None
    assert level.state == record.risk_level
    assert level.attributes["options"] == ["none", "low", "medium", "high", "critical"]

    # The event entity fired once with the verdict's attributes.
    event = hass.states.get(f"event.{cam}_security_event")
    assert event is not None
    assert event.state not in ("unknown", "unavailable")
    assert event.attributes[ATTR_EVENT_TYPE] == record.risk_level
    expected = {
        "event_id": record.event_id,
        "verdict_id": record.verdict_id,
        "risk_score": record.risk_score,
        "risk_level": record.risk_level,
        "summary": record.message.summary,
        "reasoning": record.message.reasoning,
        "labels": record.labels,
        "fast_path": False,
        "fallback": False,
        "is_update": False,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "ended_at": record.ended_at.isoformat() if record.ended_at else None,
    }
    assert {k: event.attributes[k] for k in expected} == expected
    # What the sidecar's image models saw (on by default; shapes in test_enrichment.py).
    enrichment = {k: event.attributes[k] for k in ENRICHMENT_KEYS}
    assert [run["name"] for run in enrichment["enrichers"]] == [
        run.name for run in record.message.enrichers
    ]
    assert enrichment["enrichers"], "the sidecar enriches by default"

    # One bus event with the same payload plus the camera's ids; no update event.
    (bus,) = of_camera(announced, cam)
    assert of_camera(updated, cam) == []
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_{cam}")})
    assert device is not None
    # ...and the event's snapshot, thumbnail and clip (signed URLs).
    media = ("snapshot_url", "thumbnail_url", "clip_url")
    for key in media:
        assert bus.data[key].startswith(f"/api/secmon/events/{entry.entry_id}/")
    assert {k: v for k, v in bus.data.items() if k not in media} == {
        **expected,
        **enrichment,
        # No zones configured; a sidecar that has watched the camera for under a week.
        "anomaly": 0.0,
        "baseline_days": 0.0,
        "zones": [],
        "camera_id": cam,
        "camera_name": camera_name,
        "device_id": device.id,
        "entity_id": f"event.{cam}_security_event",
        "config_entry_id": entry.entry_id,
    }

    # The logbook line.
    line = describe_verdict(bus.event_type, bus.data)
    assert line["name"] == camera_name
    assert line["entity_id"] == f"event.{cam}_security_event"
    assert line["message"] is not None
    assert line["message"].startswith(f"{record.risk_level} risk ({record.risk_score})")

    # The snapshot: the most telling frame (one of ours), full size, boxes drawn.
    assert record.message.snapshot_frame_id in {r.frame_id for r in results}
    snapshot = hass.states.get(f"image.{cam}_event_snapshot")
    assert snapshot is not None
    assert snapshot.state not in ("unknown", "unavailable")
    client = await hass_client()
    response = await client.get(snapshot.attributes["entity_picture"])
    assert response.status == 200
    body = await response.read()
    with Image.open(io.BytesIO(body)) as img:
        assert img.format == "JPEG"
        assert img.size == (320, 240)
    original = image_bytes(1 if record.message.snapshot_frame_id == results[0].frame_id else 2)
    assert body != original

    # Sidecar sensors follow GetStatus, fetched after each verdict.
    await wait_for(
        hass,
        lambda: state_of(hass, "sensor.secmon_sidecar_pending_verdicts") == "0",
        "sidecar verdict sensors",
    )
    # Counted by the integration (one verdict stored), not the sidecar process's own counter.
    assert state_of(hass, "sensor.secmon_sidecar_verdicts_produced") == "1"
    assert state_of(hass, "sensor.secmon_sidecar_llm_model") == "random:tiny"
    assert state_of(hass, "sensor.secmon_sidecar_open_batches") is not None
    assert state_of(hass, "sensor.secmon_sidecar_fallback_verdicts") is not None

    # Diagnostics list the verdict, without the LLM's free text.
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    recent = [v for v in diagnostics["verdicts"]["recent"] if v["camera_id"] == cam]
    assert [v["verdict_id"] for v in recent] == [record.verdict_id]
    assert recent[0]["summary"] == "**REDACTED**"
    assert recent[0]["summary_chars"] == len(record.message.summary)
    assert recent[0]["received_at"].endswith("+00:00")  # ISO, like every time in diagnostics
    assert diagnostics["cameras"][cam]["current_verdict_id"] == record.verdict_id


async def test_redelivered_verdict_is_acknowledged_but_applied_once(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    camera_root: Path,
    camera_name: str,
    sidecar: SidecarProcess,
) -> None:
    """The first acknowledgement is lost on the wire: the sidecar sends the verdict again; it is
    acknowledged again but stored, announced and shown only once."""
    stream = entry.runtime_data.stream
    real_write = stream._write
    acks: list[str] = []

    async def lossy_write(call: Any, message: secmon_pb2.ClientMessage) -> None:
        if message.WhichOneof("kind") == "verdict_ack":
            ids = list(message.verdict_ack.verdict_ids)
            first = not set(ids) & set(acks)
            acks.extend(ids)
            if first:
                return  # lost
        await real_write(call, message)

    stream._write = lossy_write  # type: ignore[method-assign]
    announced = async_capture_events(hass, EVENT_SECURITY)
    updated = async_capture_events(hass, EVENT_SECURITY_UPDATED)
    fired: list[str] = []
    cam = camera_id(camera_name)
    entry.runtime_data.async_add_event_listener(cam, lambda level, _attrs: fired.append(level))

    await drop_frames(hass, entry, camera_root / camera_name, [11])
    (stored,) = await wait_for_verdicts(hass, entry, cam, 1)
    verdict_id = stored.record.verdict_id
    await wait_for(hass, lambda: acks.count(verdict_id) >= 2, "the verdict sent and acked again")

    assert len(await async_camera_history(hass, entry, cam)) == 1
    assert len(of_camera(announced, cam)) == 1
    assert of_camera(updated, cam) == []
    assert fired == [stored.record.risk_level]

    # The second acknowledgement reached the sidecar: nothing of ours is pending any more.
    async def acknowledged() -> bool:
        status = await hass.async_add_executor_job(sidecar_status, sidecar.address)
        return status.pending_verdicts == 0

    await async_wait_for(hass, acknowledged, "no pending verdicts")


async def test_fast_path_then_batch_verdict(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    camera_name: str,
    sidecar: SidecarProcess,
) -> None:
    """A fast-path verdict is announced at once; the batch verdict of the same event updates the
    sensors and announces again only if it raises the level."""
    entry = make_entry(hass, sidecar, camera_root, fast_path=True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    announced = async_capture_events(hass, EVENT_SECURITY)
    updated = async_capture_events(hass, EVENT_SECURITY_UPDATED)
    cam = camera_id(camera_name)

    await drop_frames(hass, entry, camera_root / camera_name, [21])
    fast, final = await wait_for_verdicts(hass, entry, cam, 2)
    assert fast.record.fast_path and fast.record.verdict_id.endswith(":fast")
    assert not final.record.fast_path and final.record.verdict_id.endswith(":final")
    assert fast.record.event_id == final.record.event_id
    assert fast.announced

    raised = final.record.rank > fast.record.rank
    assert final.announced is raised
    bus = of_camera(announced, cam)
    assert [e.data["verdict_id"] for e in bus] == [fast.record.verdict_id] + (
        [final.record.verdict_id] if raised else []
    )
    assert bus[0].data["fast_path"] is True
    assert bus[0].data["is_update"] is False
    if raised:
        assert bus[1].data["is_update"] is True
    assert [e.data["verdict_id"] for e in of_camera(updated, cam)] == (
        [] if raised else [final.record.verdict_id]
    )
    if not raised:
        line = describe_verdict(EVENT_SECURITY_UPDATED, of_camera(updated, cam)[0].data)
        assert line["message"] is not None and line["message"].startswith("risk updated:")

    # The event entity shows the last announced verdict; the sensors the batch verdict.
    shown = final if raised else fast
    event = hass.states.get(f"event.{cam}_security_event")
    assert event is not None
    assert event.attributes["verdict_id"] == shown.record.verdict_id
    assert state_of(hass, f"sensor.{cam}_risk_score") == str(final.record.risk_score)
    assert state_of(hass, f"sensor.{cam}_risk_level") == final.record.risk_level
    score = hass.states.get(f"sensor.{cam}_risk_score")
    assert score is not None and score.attributes["verdict_id"] == final.record.verdict_id


async def test_verdict_state_restored_after_reload(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    camera_root: Path,
    camera_name: str,
) -> None:
    """Risk sensors, the event entity and the snapshot come back after a restart, from the
    integration's SQLite (and the event entity's restore state); nothing fires again."""
    cam = camera_id(camera_name)
    await drop_frames(hass, entry, camera_root / camera_name, [31, 32])
    await wait_for_verdicts(hass, entry, cam, 1)
    ids = [
        f"sensor.{cam}_risk_score",
        f"sensor.{cam}_risk_level",
        f"event.{cam}_security_event",
        f"image.{cam}_event_snapshot",
    ]
    before = {i: hass.states.get(i) for i in ids}
    client = await hass_client()
    picture = before[ids[3]]
    assert picture is not None
    snapshot_before = await (await client.get(picture.attributes["entity_picture"])).read()

    announced = async_capture_events(hass, EVENT_SECURITY)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, ids[0]) == "unavailable"
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for entity_id, old in before.items():
        new = hass.states.get(entity_id)
        assert new is not None and old is not None
        assert new.state == old.state, entity_id
        assert {k: v for k, v in new.attributes.items() if k not in VOLATILE} == {
            k: v for k, v in old.attributes.items() if k not in VOLATILE
        }, entity_id
    picture = hass.states.get(ids[3])
    assert picture is not None
    snapshot_after = await (await client.get(picture.attributes["entity_picture"])).read()
    assert snapshot_after == snapshot_before
    assert of_camera(announced, cam) == []


BLUEPRINT = Path(__file__).resolve().parents[2] / "blueprints/automation/secmon/notify_on_risk.yaml"


async def use_blueprint(
    hass: HomeAssistant, config_dir: Path, *automations: dict[str, Any]
) -> None:
    """Install the shipped blueprint and create automations from it."""
    target = config_dir / "blueprints" / "automation" / "secmon" / BLUEPRINT.name
    target.parent.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target)
    assert await async_setup_component(hass, "automation", {"automation": list(automations)})
    await hass.async_block_till_done()
    for index in range(len(automations)):
        state = hass.states.get(f"automation.notify_{index}")
        assert state is not None and state.state == "on", state


def blueprint_automation(index: int, cam: str, minimum: str, **targets: Any) -> dict[str, Any]:
    """An automation made from the blueprint for one camera."""
    return {
        "alias": f"notify {index}",
        "use_blueprint": {
            "path": "secmon/notify_on_risk.yaml",
            "input": {
                "event_entities": [f"event.{cam}_security_event"],
                "minimum_level": minimum,
                **targets,
            },
        },
    }


async def test_notify_blueprint(
    hass: HomeAssistant,
    *,
    entry: MockConfigEntry,
    config_dir: Path,
    camera_root: Path,
    camera_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The shipped blueprint notifies a companion app with the summary, the snapshot and a tag
    when the event entity fires at or above the chosen level."""
    calls = async_mock_service(hass, "notify", "mobile_app_test_phone")
    cam = camera_id(camera_name)
    target = {"notify_service": "notify.mobile_app_test_phone"}
    await use_blueprint(
        hass,
        config_dir,
        blueprint_automation(0, cam, "low", **target),
        blueprint_automation(1, cam, "critical", **target),
    )

    await drop_frames(hass, entry, camera_root / camera_name, [41])
    (stored,) = await wait_for_verdicts(hass, entry, cam, 1)
    record = stored.record
    expected_calls = 2 if record.risk_level == "critical" else 1
    await wait_for(hass, lambda: len(calls) >= expected_calls, "notifications")
    await hass.async_block_till_done()
    assert len(calls) == expected_calls
    data = calls[0].data
    assert data["title"] == f"{camera_name}: {record.risk_level} risk ({record.risk_score})"
    assert data["message"] == record.message.summary
    # The event's own snapshot, by a signed link (not the snapshot entity's expiring token).
    image = data["data"]["image"]
    assert image.startswith(f"/api/secmon/events/{entry.entry_id}/"), image
    assert f"{record.verdict_id}/snapshot?authSig=" in image
    event = hass.states.get(f"event.{cam}_security_event")
    assert event is not None and event.attributes["snapshot_url"] == image
    assert data["data"]["tag"] == f"secmon-{record.event_id}"
    assert "unsafe" not in caplog.text
    assert "Error" not in caplog.text


def escalation(record: VerdictRecord) -> tuple[str, dict[str, Any]]:
    """The level and attributes of a later verdict of the same event that raised its level."""
    return "critical", {**record.attributes(is_update=True), "risk_level": "critical"}


async def test_notify_blueprint_escalation_and_other_targets(
    hass: HomeAssistant,
    *,
    entry: MockConfigEntry,
    config_dir: Path,
    camera_root: Path,
    camera_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An escalation says " (updated)"; notify entities and actions without a `data` field
    (persistent_notification.create) are notified with the title and message only."""
    assert await async_setup_component(hass, "persistent_notification", {})
    sent = async_mock_service(hass, "notify", "send_message")
    cam = camera_id(camera_name)
    await use_blueprint(
        hass,
        config_dir,
        blueprint_automation(
            0,
            cam,
            "low",
            notify_entities=["notify.kitchen_display"],
            notify_service="persistent_notification.create",
        ),
    )
    await drop_frames(hass, entry, camera_root / camera_name, [43])
    (stored,) = await wait_for_verdicts(hass, entry, cam, 1)
    record = stored.record
    first = f"{camera_name}: {record.risk_level} risk ({record.risk_score})"
    await wait_for(hass, lambda: len(sent) >= 1, "notify entity message")
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    await wait_for(
        hass,
        lambda: any(n["title"] == first for n in notifications.values()),
        "persistent notification",
    )

    # A later verdict of the event that raised the level: the event entity fires again.
    level, attributes = escalation(record)
    entry.runtime_data.async_fire_event(cam, level, attributes)
    await wait_for(hass, lambda: len(sent) >= 2, "escalation message")
    await hass.async_block_till_done()
    updated = f"{camera_name}: critical risk ({record.risk_score}) (updated)"
    assert [call.data["title"] for call in sent] == [first, updated]
    assert all(call.data["entity_id"] == ["notify.kitchen_display"] for call in sent)
    assert all(set(call.data) == {"entity_id", "title", "message"} for call in sent)
    titles = sorted(n["title"] for n in notifications.values())
    assert titles == sorted([first, updated])
    assert "unsafe" not in caplog.text
    assert "extra keys" not in caplog.text
