"""Nothing is lost: the sidecar killed mid-stream, and Home Assistant restarting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.settings import database_path
from tests.integration.helpers import frame_id_of, image_bytes, state_of, wait_for, write_image
from tests.integration.sidecar_process import SidecarProcess


def frame_states(db: Path, frames: dict[str, str]) -> dict[str, str]:
    """Where each frame (name -> id) stands in the integration's SQLite."""
    states = {}
    with sqlite3.connect(db) as conn:
        for name, frame_id in frames.items():
            if conn.execute("SELECT 1 FROM results WHERE frame_id = ?", (frame_id,)).fetchone():
                states[name] = "result"
            elif conn.execute("SELECT 1 FROM frames WHERE frame_id = ?", (frame_id,)).fetchone():
                states[name] = "pending"
            elif conn.execute("SELECT 1 FROM seen WHERE frame_id = ?", (frame_id,)).fetchone():
                states[name] = "seen, neither pending nor answered"
            else:
                states[name] = "never queued"
    return states


def stored_results(db: Path) -> tuple[int, int, int]:
    """(results stored, distinct frame ids among them, frames still pending) from the SQLite."""
    with sqlite3.connect(db) as conn:
        (results,) = conn.execute("SELECT COUNT(*) FROM results").fetchone()
        (distinct,) = conn.execute("SELECT COUNT(DISTINCT frame_id) FROM results").fetchone()
        (pending,) = conn.execute("SELECT COUNT(*) FROM frames").fetchone()
    return results, distinct, pending


@pytest.mark.timeout(600)  # 40 frames through a restarted sidecar on a shared, busy machine
async def test_sidecar_killed_mid_stream(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path, sidecar: SidecarProcess
) -> None:
    """Kill -9 while frames are in flight, queue more while it is gone, restart: every frame
    gets exactly one result."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    front = camera_root / "Front Door"
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected")

    # Spy on the one place results become state, to see each applied exactly once.
    applied: list[str] = []
    apply = coordinator.async_apply_result

    def record(result: secmon_pb2.FrameResult, image: bytes, captured_at: float) -> None:
        applied.append(result.frame_id)
        apply(result, image, captured_at)

    coordinator.async_apply_result = record  # type: ignore[method-assign]

    frames: dict[str, str] = {}
    for n in range(30):
        data = image_bytes(200 + n, size=(480, 360))
        write_image(front / f"burst-{n:02}.jpg", data)
        frames[f"burst-{n:02}"] = frame_id_of("front_door", data)
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] >= 1, "first results")
    sidecar.kill()
    await wait_for(hass, lambda: not coordinator.sidecar.connected, "disconnect noticed")
    assert state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_OFF
    assert state_of(hass, "camera.front_door") != "unavailable"
    assert state_of(hass, "sensor.front_door_objects") == "unavailable"
    # What the sidecar reported goes unavailable with it (no stale values); what this side counts
    # stays, and carries on from there once it is back (checked below: 40 in all).
    assert state_of(hass, "sensor.secmon_sidecar_llm_model") == "unavailable"
    for key in ("frames_processed", "verdicts_produced"):
        value = state_of(hass, f"sensor.secmon_sidecar_{key}")
        assert value not in (None, "unavailable", "unknown"), key

    for n in range(10):
        data = image_bytes(300 + n)
        write_image(front / "while-down" / f"{n}.jpg", data)
        frames[f"while-down/{n}"] = frame_id_of("front_door", data)
    await wait_for(hass, lambda: coordinator.queue_depth >= 10, "frames queued while down")

    sidecar.start()
    # Generous limit: the restarted sidecar loads its models first, and CI machines are shared.
    db = database_path(hass, entry.entry_id)
    try:
        await wait_for(
            hass, lambda: coordinator.counters["frames_processed"] >= 40, "every frame", limit=420
        )
    except AssertionError:
        states = await hass.async_add_executor_job(frame_states, db, frames)
        stream = coordinator.stream
        lost = {name: state for name, state in states.items() if state != "result"}
        raise AssertionError(
            f"not every frame was answered: {lost}; counters {dict(coordinator.counters)};"
            f" in flight {sorted(stream.in_flight_ids)}; sessions {stream.sessions}"
        ) from None
    await hass.async_block_till_done()
    assert coordinator.counters["frames_processed"] == 40
    assert state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_ON
    assert state_of(hass, "sensor.secmon_sidecar_queue_depth") == "0"
    assert entry.runtime_data.stream.sessions == 2

    results, distinct, pending = await hass.async_add_executor_job(stored_results, db)
    assert (results, distinct, pending) == (40, 40, 0)
    # Each frame's result reached the camera once.
    assert len(applied) == len(set(applied)) == 40


async def test_ha_restart_replays_queue_and_catches_up(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    camera_root: Path,
    sidecar: SidecarProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Frames pending at shutdown are replayed; files that landed while HA was down are taken."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    front = camera_root / "Front Door"
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected")
    write_image(front / "before.jpg", image_bytes(400))
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "first frame")

    # The sidecar goes away; frames queue up; then HA stops (entry unloaded) with them pending.
    sidecar.kill()
    await wait_for(hass, lambda: not coordinator.sidecar.connected, "disconnect noticed")
    for n in range(5):
        write_image(front / f"pending-{n}.jpg", image_bytes(410 + n))
    await wait_for(hass, lambda: coordinator.queue_depth == 5, "pending frames")
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # While HA is down: the sidecar comes back, and new images land (one in a new camera).
    sidecar.start()
    for n in range(3):
        write_image(front / "2026-11-21" / f"while-ha-down-{n}.jpg", image_bytes(420 + n))
    write_image(camera_root / "Garage" / "g.jpg", image_bytes(430))

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(
        hass, lambda: coordinator.counters["frames_processed"] == 10, "replay and catch-up"
    )
    await hass.async_block_till_done()
    assert coordinator.queue_depth == 0
    assert state_of(hass, "sensor.garage_objects") not in (None, "unavailable", "unknown")
    results, distinct, pending = await hass.async_add_executor_job(
        stored_results, database_path(hass, entry.entry_id)
    )
    assert (results, distinct, pending) == (10, 10, 0)
    # The catch-up took only what landed while HA was down: nothing taken before came back.
    assert "Catching up on 4 image(s)" in caplog.text
    assert coordinator.counters["duplicates"] == 0

    # Another restart with nothing new: no catch-up at all.
    caplog.clear()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected again")
    await wait_for(
        hass,
        lambda: all(t.done() for t in coordinator._tasks if "catch-up" in t.get_name()),
        "the start-up scan",
    )
    await coordinator.ingestor.async_wait_idle()
    await hass.async_block_till_done()
    assert "Catching up" not in caplog.text
    assert coordinator.counters["duplicates"] == 0
