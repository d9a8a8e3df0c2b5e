"""Files dropped into camera folders become devices, entities and states (real sidecar)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import DOMAIN
from custom_components.secmon.link.proto import secmon_pb2
from tests.integration.helpers import frame_id_of, image_bytes, state_of, wait_for, write_image


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_drop_zone(
    hass: HomeAssistant,
    *,
    entry: MockConfigEntry,
    camera_root: Path,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Valid, duplicate, corrupt, truncated, zero-byte, nested and new-camera files."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        hass, lambda: state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_ON, "up"
    )
    coordinator = entry.runtime_data
    front = camera_root / "Front Door"

    valid = image_bytes(100, size=(640, 480))
    nested = image_bytes(101, size=(320, 240))
    back_yard = image_bytes(102, size=(200, 150), fmt="PNG")
    # Written in place (not renamed in), like a camera writing straight to the share.
    (front / "valid.jpg").write_bytes(valid)
    shutil.copyfile(front / "valid.jpg", front / "copy-of-valid.JPG")
    write_image(front / "2026-11-20" / "12" / "nested.jpeg", nested)
    write_image(front / "corrupt.jpg", b"this is not an image at all")
    write_image(front / "truncated.jpg", valid[: len(valid) // 2])
    write_image(front / "empty.jpg", b"")
    write_image(front / "notes.txt", b"ignored")
    write_image(camera_root / "Back Yard" / "first.png", back_yard)

    await wait_for(
        hass,
        lambda: (
            coordinator.counters["frames_processed"] == 3
            and coordinator.counters["frames_skipped"] == 3
            and coordinator.counters["duplicates"] == 1
        ),
        "all files handled",
    )
    await hass.async_block_till_done()

    # A device per camera folder, named after it; the new folder got its entities at runtime.
    back = device_registry.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_back_yard")})
    assert back is not None
    assert back.name == "Back Yard"
    for entity_id in (
        "camera.back_yard",
        "sensor.back_yard_objects",
        "binary_sensor.back_yard_person",
    ):
        assert entity_registry.async_get(entity_id) is not None, entity_id
        assert hass.states.get(entity_id) is not None, entity_id

    # States agree with what the sidecar replied for the newest frame of each camera.
    queue = entry.runtime_data.queue
    for camera_id, data in (("front_door", None), ("back_yard", back_yard)):
        camera = coordinator.cameras[camera_id]
        if data is not None:
            assert camera.frame_id == frame_id_of(camera_id, data)
        raw = await hass.async_add_executor_job(queue.result, camera.frame_id)
        assert raw is not None
        result = secmon_pb2.FrameResult.FromString(raw)
        assert not result.HasField("error")
        assert state_of(hass, f"sensor.{camera_id}_objects") == str(len(result.detections))
    assert coordinator.cameras["front_door"].frame_id in {
        frame_id_of("front_door", valid),
        frame_id_of("front_door", nested),
    }

    assert state_of(hass, "sensor.secmon_sidecar_frames_processed") == "3"
    assert state_of(hass, "sensor.secmon_sidecar_frames_skipped") == "3"
    assert state_of(hass, "sensor.secmon_sidecar_queue_depth") == "0"
    assert float(state_of(hass, "sensor.secmon_sidecar_inference_latency") or 0) > 0
    # One warning per invalid file.
    for name in ("corrupt.jpg", "truncated.jpg", "empty.jpg"):
        assert sum(name in r.getMessage() for r in caplog.records if r.levelname == "WARNING") == 1

    # Touching a file again (same content) does not send it twice.
    (front / "valid.jpg").write_bytes(valid)
    write_image(front / "again.jpg", nested)
    await wait_for(hass, lambda: coordinator.counters["duplicates"] == 3, "duplicates")
    assert coordinator.counters["frames_processed"] == 3

    # Dedupe is per camera: the same bytes in another camera's folder are that camera's frame.
    write_image(camera_root / "Back Yard" / "same-as-front.jpg", valid)
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 4, "other camera")
    assert coordinator.counters["duplicates"] == 3
    back_frame = frame_id_of("back_yard", valid)
    assert back_frame != frame_id_of("front_door", valid)
    await wait_for(
        hass, lambda: coordinator.cameras["back_yard"].frame_id == back_frame, "back yard frame"
    )
    raw = await hass.async_add_executor_job(queue.result, back_frame)
    assert raw is not None
    assert secmon_pb2.FrameResult.FromString(raw).camera_id == "back_yard"
