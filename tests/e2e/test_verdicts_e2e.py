"""End to end: images dropped into a camera folder -> detections -> event batch -> verdict from the
tiny random GGUF -> risk sensors, event entity, bus event, snapshot. Fast path, LLM failure, and
the sidecar killed with an open batch and unacknowledged verdicts.

Each sidecar here starts with its default windows (90 s / 30 s): the short ones the tests rely on
come from the entry's options, pushed in Hello.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.event import ATTR_EVENT_TYPE
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    DOMAIN,
    EVENT_SECURITY,
    EVENT_SECURITY_UPDATED,
)
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.storage.verdict_store import HistoryEntry
from tests.integration.helpers import (
    async_wait_for,
    frame_id_of,
    image_bytes,
    state_of,
    wait_for,
    write_image,
)
from tests.integration.sidecar_process import SidecarProcess, free_port
from tests.integration.verdict_helpers import (
    async_camera_history,
    sidecar_status,
    verdict_options,
)

CAMERA = "front_door"

# Each test starts (some restart) a sidecar and waits for LLM verdicts; on a machine shared with
# busy loops that can take several minutes (the project-wide limit is 240 s per test).
pytestmark = pytest.mark.timeout(600)


async def set_up(
    hass: HomeAssistant, sidecar: SidecarProcess, camera_root: Path, **options: Any
) -> MockConfigEntry:
    """An entry for the test's sidecar with short event windows, set up and connected."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options=verdict_options(**options),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected")
    return entry


def drop(folder: Path, seeds: list[int]) -> list[str]:
    """Drop images; returns their frame ids."""
    ids = []
    for seed in seeds:
        data = image_bytes(seed, size=(480, 360))
        write_image(folder / f"img-{seed}.jpg", data)
        ids.append(frame_id_of(CAMERA, data))  # every test drops into Front Door
    return ids


def shown(events: list[Event]) -> list[str]:
    """Verdict ids of captured bus events of the camera."""
    return [e.data["verdict_id"] for e in events if e.data["camera_id"] == CAMERA]


async def stored_verdicts(
    hass: HomeAssistant, entry: MockConfigEntry, count: int, events: list[Event]
) -> list[HistoryEntry]:
    """Wait until `count` verdicts were shown (bus events); return the stored ones."""
    await wait_for(hass, lambda: len(shown(events)) >= count, f"{count} verdict(s)")
    return await async_camera_history(hass, entry, CAMERA)


@pytest.fixture
def bus_events(hass: HomeAssistant) -> list[Event]:
    """Every secmon_event and secmon_event_updated, in order."""
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_SECURITY, record)
    hass.bus.async_listen(EVENT_SECURITY_UPDATED, record)
    return events


async def test_dropped_frames_become_a_verdict(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    """Files in a nested date folder -> one batch, closed on idle -> one verdict in HA."""
    # Idle and window wide enough that the three frames join one batch even when each takes
    # seconds to get through a busy machine.
    entry = await set_up(hass, sidecar, camera_root, window=300.0, idle=15.0)
    frame_ids = drop(camera_root / "Front Door" / "2026-11-21", [501, 502, 503])

    (stored,) = await stored_verdicts(hass, entry, 1, bus_events)
    record = stored.record
    assert record.message.close_reason == "idle"
    assert set(record.message.frame_ids) == set(frame_ids)
    assert record.message.model == "random:tiny"
    assert state_of(hass, "sensor.front_door_risk_score") == str(record.risk_score)
    assert state_of(hass, "sensor.front_door_risk_level") == record.risk_level
    event = hass.states.get("event.front_door_security_event")
    assert event is not None
    assert event.attributes[ATTR_EVENT_TYPE] == record.risk_level
    assert event.attributes["event_id"] == record.event_id
    assert shown(bus_events) == [record.verdict_id]

    snapshot = hass.states.get("image.front_door_event_snapshot")
    assert snapshot is not None and snapshot.state not in ("unknown", "unavailable")
    camera = entry.runtime_data.cameras[CAMERA]
    assert camera.snapshot is not None and camera.snapshot[:2] == b"\xff\xd8"
    assert record.message.snapshot_frame_id in frame_ids


async def test_fast_path(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    """A detection on the fast path is announced before its batch closes; the batch verdict
    follows for the same event."""
    entry = await set_up(hass, sidecar, camera_root, fast_path=True, idle=3.0)
    drop(camera_root / "Front Door", [511])

    await wait_for(hass, lambda: len(shown(bus_events)) >= 1, "fast-path verdict")
    first = next(e for e in bus_events if e.data["camera_id"] == CAMERA)
    assert first.event_type == EVENT_SECURITY
    assert first.data["fast_path"] is True
    assert first.data["verdict_id"].endswith(":fast")
    assert state_of(hass, "event.front_door_security_event") not in (None, "unknown")

    fast, final = await stored_verdicts(hass, entry, 2, bus_events)
    assert fast.record.verdict_id == first.data["verdict_id"]
    assert final.record.event_id == fast.record.event_id
    assert final.record.message.close_reason == "idle"
    assert state_of(hass, "sensor.front_door_risk_score") == str(final.record.risk_score)
    assert shown(bus_events) == [fast.record.verdict_id, final.record.verdict_id]


@pytest.fixture
def failing_llm_sidecar() -> Generator[SidecarProcess]:
    """A sidecar whose LLM endpoint refuses connections."""
    process = SidecarProcess(
        extra_args=("--llm", f"http://127.0.0.1:{free_port()}/v1", "--llm-timeout-s", "5")
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def test_llm_failure_gives_fallback_verdict(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    failing_llm_sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    """The verdict still arrives, flagged fallback, saying that analysis was unavailable."""
    entry = await set_up(hass, failing_llm_sidecar, camera_root)
    drop(camera_root / "Front Door", [521])

    (stored,) = await stored_verdicts(hass, entry, 1, bus_events)
    assert stored.record.fallback
    event = hass.states.get("event.front_door_security_event")
    assert event is not None
    assert event.attributes["fallback"] is True
    assert "unavailable" in event.attributes["summary"].lower()
    assert state_of(hass, "sensor.front_door_risk_score") == str(stored.record.risk_score)
    await wait_for(
        hass,
        lambda: int(state_of(hass, "sensor.secmon_sidecar_fallback_verdicts") or 0) >= 1,
        "fallback verdict counted",
    )


async def test_sidecar_killed_with_open_batch_and_unacknowledged_verdict(
    hass: HomeAssistant,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
    bus_events: list[Event],
) -> None:
    """Acknowledgements are lost until the sidecar is killed (SIGKILL) with the batch still open
    and its fast-path verdict unacknowledged. After the restart the fast-path verdict comes again
    (acknowledged, not applied again), the batch closes, and each verdict shows up exactly once."""
    # The batch must still be open when the fast-path verdict is in: on a busy machine that verdict
    # alone took 12.5 s of LLM time, so the idle timeout leaves a wide margin.
    entry = await set_up(hass, sidecar, camera_root, fast_path=True, idle=30.0, window=300.0)
    stream = entry.runtime_data.stream
    real_write = stream._write
    acks: list[str] = []
    lose_acks = True

    async def write(call: Any, message: secmon_pb2.ClientMessage) -> None:
        if message.WhichOneof("kind") == "verdict_ack":
            acks.extend(message.verdict_ack.verdict_ids)
            if lose_acks:
                return
        await real_write(call, message)

    stream._write = write  # type: ignore[method-assign]
    front = camera_root / "Front Door"
    drop(front, [531])
    await wait_for(hass, lambda: len(shown(bus_events)) >= 1, "fast-path verdict")
    fast_id = shown(bus_events)[0]
    assert fast_id.endswith(":fast")

    status = await hass.async_add_executor_job(sidecar_status, sidecar.address)
    assert status.open_batches == 1, "the batch is still open"
    assert status.pending_verdicts >= 1, "the fast-path verdict is unacknowledged"
    sidecar.kill()
    lose_acks = False
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: not coordinator.sidecar.connected, "disconnect noticed")

    sidecar.start()
    fast, final = await stored_verdicts(hass, entry, 2, bus_events)
    assert fast.record.verdict_id == fast_id
    assert final.record.verdict_id == f"{fast.record.message.batch_id}:final"
    assert list(final.record.message.frame_ids) == [fast.record.message.snapshot_frame_id]

    async def all_acknowledged() -> bool:
        status = await hass.async_add_executor_job(sidecar_status, sidecar.address)
        return status.pending_verdicts == 0 and status.open_batches == 0

    await async_wait_for(hass, all_acknowledged, "every verdict acknowledged")
    assert acks.count(fast_id) >= 2, "sent again after the restart and acknowledged again"
    await hass.async_block_till_done()
    assert shown(bus_events) == [fast_id, final.record.verdict_id]
    assert len(await async_camera_history(hass, entry, CAMERA)) == 2
