"""Camera devices whose folder is gone: removed after the grace period or by the user; their
history stays in the database; the sidecar's device is never removable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon import async_remove_config_entry_device, coordinator
from custom_components.secmon.const import DOMAIN

from .helpers import image_bytes, wait_for, write_image


def _device(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry, camera_id: str
) -> dr.DeviceEntry | None:
    return device_registry.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_{camera_id}")})


async def _garage_with_a_frame(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path
) -> str:
    """A Garage camera with one analysed frame; returns the frame id."""
    write_image(camera_root / "Garage" / "one.jpg", image_bytes(11))
    runtime = entry.runtime_data
    await wait_for(hass, lambda: runtime.counters["frames_processed"] == 1, "garage frame")
    frame_id = runtime.cameras["garage"].frame_id
    assert frame_id is not None
    return frame_id


async def test_gone_folder_loses_its_device_after_the_grace_period(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    device_registry: dr.DeviceRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = init_integration
    runtime = entry.runtime_data
    frame_id = await _garage_with_a_frame(hass, entry, camera_root)
    assert _device(device_registry, entry, "garage") is not None
    assert hass.states.get("camera.garage") is not None

    await hass.async_add_executor_job(shutil.rmtree, camera_root / "Garage")
    await runtime.async_check_camera_folders()
    # Gone, but not for long: the device stays.
    assert _device(device_registry, entry, "garage") is not None
    missing = await hass.async_add_executor_job(runtime.queue.missing_cameras)
    assert set(missing) == {"garage"}

    monkeypatch.setattr(coordinator, "STALE_CAMERA_GRACE", 0.0)
    await runtime.async_check_camera_folders()
    await hass.async_block_till_done()
    assert _device(device_registry, entry, "garage") is None
    assert hass.states.get("camera.garage") is None
    assert "garage" not in runtime.cameras
    assert _device(device_registry, entry, "front_door") is not None
    # History stays.
    assert await hass.async_add_executor_job(runtime.queue.result, frame_id) is not None

    # A restart does not bring the device back.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert _device(device_registry, entry, "garage") is None
    assert "garage" not in entry.runtime_data.cameras


async def test_a_folder_that_comes_back_is_no_longer_missing(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    runtime = init_integration.runtime_data
    await _garage_with_a_frame(hass, init_integration, camera_root)
    await hass.async_add_executor_job(shutil.rmtree, camera_root / "Garage")
    await runtime.async_check_camera_folders()
    (camera_root / "Garage").mkdir()
    await runtime.async_check_camera_folders()
    assert await hass.async_add_executor_job(runtime.queue.missing_cameras) == {}


async def test_user_removes_a_camera_device_only_when_its_folder_is_gone(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    device_registry: dr.DeviceRegistry,
) -> None:
    entry = init_integration
    await _garage_with_a_frame(hass, entry, camera_root)
    sidecar = device_registry.async_get_device(identifiers={(DOMAIN, entry.entry_id)})
    front = _device(device_registry, entry, "front_door")
    garage = _device(device_registry, entry, "garage")
    assert sidecar is not None
    assert front is not None
    assert garage is not None

    assert not await async_remove_config_entry_device(hass, entry, sidecar)
    assert not await async_remove_config_entry_device(hass, entry, front)
    assert not await async_remove_config_entry_device(hass, entry, garage)

    await hass.async_add_executor_job(shutil.rmtree, camera_root / "Garage")
    assert await async_remove_config_entry_device(hass, entry, garage)
    assert "garage" not in entry.runtime_data.cameras
    device_registry.async_update_device(garage.id, remove_config_entry_id=entry.entry_id)
    await hass.async_block_till_done()

    # After a restart the removed camera stays removed.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert _device(device_registry, entry, "garage") is None
