"""Entities follow the sidecar's results: counts, occupancy with clear delay, camera image."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from homeassistant.components.camera import async_get_image
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import (
    ANIMAL_LABELS,
    CONF_CLEAR_DELAY,
    DOMAIN,
    PERSON_LABELS,
    VEHICLE_LABELS,
)
from custom_components.secmon.ingest.watcher import camera_id_for
from custom_components.secmon.link.proto import secmon_pb2

from .helpers import frame_id_of, image_bytes, state_of, wait_for, write_image

CATEGORIES = {"person": PERSON_LABELS, "vehicle": VEHICLE_LABELS, "animal": ANIMAL_LABELS}


def stored_result(entry: MockConfigEntry, frame_id: str) -> secmon_pb2.FrameResult:
    """The result the integration stored for a frame (what the sidecar replied)."""
    raw = entry.runtime_data.queue.result(frame_id)
    assert raw is not None
    return secmon_pb2.FrameResult.FromString(raw)


async def drop_and_wait(
    hass: HomeAssistant, entry: MockConfigEntry, path: Path, data: bytes
) -> secmon_pb2.FrameResult:
    """Drop an image and wait for its result to be applied to the camera."""
    write_image(path, data)
    frame_id = frame_id_of(camera_id_for(path.parent.name), data)
    camera = entry.runtime_data.cameras
    await wait_for(
        hass,
        lambda: any(c.frame_id == frame_id for c in camera.values()),
        f"result for {path.name}",
    )
    return await hass.async_add_executor_job(stored_result, entry, frame_id)


async def test_results_drive_camera_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
) -> None:
    """Objects count and per-label attributes, occupancy per category, last frame, image."""
    entry = init_integration
    data = image_bytes(7, size=(400, 300))
    result = await drop_and_wait(hass, entry, camera_root / "Front Door" / "a.jpg", data)
    labels = [d.label for d in result.detections]

    objects = hass.states.get("sensor.front_door_objects")
    assert objects is not None
    assert objects.state == str(len(labels))
    for label in set(labels):
        assert objects.attributes[label] == labels.count(label)
    # The capture time is on the camera; the per-frame "Last frame" sensor is off by default
    # (it would write a logbook line for every frame).
    camera_state = hass.states.get("camera.front_door")
    assert camera_state is not None
    captured = entry.runtime_data.cameras["front_door"].captured_at
    assert captured is not None
    assert camera_state.attributes["last_frame"] == captured.isoformat()
    last_frame = er.async_get(hass).async_get("sensor.front_door_last_frame")
    assert last_frame is not None
    assert last_frame.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    for category, members in CATEGORIES.items():
        expected = STATE_ON if members & set(labels) else STATE_OFF
        assert state_of(hass, f"binary_sensor.front_door_{category}") == expected
    assert state_of(hass, "sensor.secmon_sidecar_frames_processed") == "1"
    assert state_of(hass, "sensor.secmon_sidecar_queue_depth") == "0"

    image = await async_get_image(hass, "camera.front_door")
    assert image.content_type == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as rendered:
        assert rendered.size == (400, 300)

    # After the clear delay every occupancy sensor is off again.
    later = dt_util.utcnow() + timedelta(seconds=entry.options[CONF_CLEAR_DELAY] + 1)
    with freeze_time(later):
        async_fire_time_changed(hass, later)
        await hass.async_block_till_done()
        for category in CATEGORIES:
            assert state_of(hass, f"binary_sensor.front_door_{category}") == STATE_OFF


async def test_boxes_are_drawn(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, camera_root: Path
) -> None:
    """With a threshold low enough for detections, the camera image differs from the upload
    where the boxes are."""
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, "detection_threshold": 0.001}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    data = image_bytes(8, size=(320, 240), fmt="PNG")
    result = await drop_and_wait(
        hass, mock_config_entry, camera_root / "Front Door" / "boxes.png", data
    )
    assert result.detections, "threshold 0.001 should let the tiny model's detections through"
    image = await async_get_image(hass, "camera.front_door")
    with Image.open(io.BytesIO(image.content)) as rendered, Image.open(io.BytesIO(data)) as orig:
        box = result.detections[0].box
        x, y = int(box.x_min), int(box.y_min)
        x = min(max(x, 2), rendered.width - 3)
        y = min(max(y, 2), rendered.height - 3)
        # Somewhere on the first box's top-left corner the drawn outline changes the pixels.
        window = [(x + dx, y + dy) for dx in range(-2, 3) for dy in range(-2, 3)]
        orig_rgb = orig.convert("RGB")
        assert any(
            max(abs(a - b) for a, b in zip(rendered.getpixel(p), orig_rgb.getpixel(p), strict=True))
            > 40
            for p in window
        )


async def test_classes_of_interest_filter(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, camera_root: Path
) -> None:
    """Only the chosen classes count for the sensors."""
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={
            **mock_config_entry.options,
            "detection_threshold": 0.001,
            "classes_of_interest": ["zebra"],
        },
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    result = await drop_and_wait(
        hass, mock_config_entry, camera_root / "Front Door" / "c.jpg", image_bytes(9)
    )
    zebras = sum(1 for d in result.detections if d.label == "zebra")
    assert state_of(hass, "sensor.front_door_objects") == str(zebras)
    assert state_of(hass, "binary_sensor.front_door_person") == STATE_OFF
    assert state_of(hass, "binary_sensor.front_door_vehicle") == STATE_OFF


async def test_camera_restores_last_frame_after_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """After a restart the camera shows the last analysed frame again."""
    entry = init_integration
    await drop_and_wait(hass, entry, camera_root / "Front Door" / "last.jpg", image_bytes(10))
    before = (await async_get_image(hass, "camera.front_door")).content

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    after = (await async_get_image(hass, "camera.front_door")).content
    assert after == before
    assert state_of(hass, "sensor.secmon_sidecar_frames_processed") == "1"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_gpu_sensors(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
) -> None:
    """The real sidecar here has no GPU (NVML absent): no GPU sensors, and those an earlier
    version registered go. A status from a GPU box creates and fills them."""
    entry = mock_config_entry
    registry = er.async_get(hass)
    stale = registry.async_get_or_create(
        "sensor",
        DOMAIN,
        f"{entry.entry_id}_sidecar_gpu_temperature",
        config_entry=entry,
        suggested_object_id="secmon_sidecar_gpu_temperature",
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        hass, lambda: entry.runtime_data.sidecar.status is not None, "the sidecar's status"
    )
    await hass.async_block_till_done()
    assert registry.async_get(stale.entity_id) is None
    assert state_of(hass, "sensor.secmon_sidecar_gpu_utilization") is None
    assert state_of(hass, "sensor.secmon_sidecar_gpu_temperature") is None

    status = secmon_pb2.SidecarStatus()
    status.CopyFrom(entry.runtime_data.sidecar.status)
    status.gpus.append(
        secmon_pb2.GpuStatus(
            name="NVIDIA H200",
            utilization_percent=37.0,
            memory_used_bytes=24 * 2**30,
            memory_total_bytes=141 * 2**30,
            temperature_c=51.0,
        )
    )
    entry.runtime_data.async_on_status(status)
    await hass.async_block_till_done()
    assert state_of(hass, "sensor.secmon_sidecar_gpu_utilization") == "37.0"
    assert state_of(hass, "sensor.secmon_sidecar_gpu_temperature") == "51.0"
    memory = hass.states.get("sensor.secmon_sidecar_gpu_memory_used")
    assert memory is not None
    assert float(memory.state) == 24.0
    assert memory.attributes["unit_of_measurement"] == "GiB"


async def test_noisy_diagnostic_sensors_are_disabled_by_default(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """The latency sensors change with every frame: off until the user turns them on (so are the
    GPU sensors, created only when the sidecar reports a GPU)."""
    for key in ("inference_latency",):
        entity_id = f"sensor.secmon_sidecar_{key}"
        entry = entity_registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(entity_id) is None
    assert hass.states.get("sensor.secmon_sidecar_queue_depth") is not None


async def test_before_the_first_frame_and_verdict(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A new camera shows no "unknown" and no broken picture: 0 objects, no risk (score 0, level
    "none"), and placeholder pictures from the camera and the event snapshot."""
    entry = init_integration
    await wait_for(hass, lambda: entry.runtime_data.sidecar.connected, "connected")
    await hass.async_block_till_done()
    assert state_of(hass, "sensor.front_door_objects") == "0"
    assert state_of(hass, "sensor.front_door_risk_score") == "0"
    assert state_of(hass, "sensor.front_door_risk_level") == "none"
    assert state_of(hass, "sensor.front_door_description") == ""
    client = await hass_client()
    for entity_id, api in (
        ("camera.front_door", "camera_proxy"),
        ("image.front_door_event_snapshot", "image_proxy"),
    ):
        state = hass.states.get(entity_id)
        assert state is not None
        response = await client.get(state.attributes["entity_picture"])
        assert response.status == 200, entity_id
        assert f"/api/{api}/" in state.attributes["entity_picture"]
        with Image.open(io.BytesIO(await response.read())) as img:
            assert img.format == "JPEG"
            assert img.size == (640, 360)
