"""Diagnostics redact the token and describe the running entry."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import CONF_TOKEN

from .helpers import image_bytes, wait_for, write_image


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
    camera_root: Path,
) -> None:
    """Token redacted; sidecar, queue, counters and cameras present."""
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_TOKEN: "not-checked-by-sidecar"}
    )
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    write_image(camera_root / "Front Door" / "d.jpg", image_bytes(30))
    coordinator = mock_config_entry.runtime_data
    await wait_for(hass, lambda: coordinator.counters["frames_processed"] == 1, "frame processed")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, mock_config_entry)
    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert "not-checked-by-sidecar" not in str(diagnostics)
    assert diagnostics["sidecar"]["connected"] is True
    status = diagnostics["sidecar"]["status"]
    assert status["ready"] is True
    # One style: snake_case names, counts as numbers.
    assert isinstance(status["frames_received"], int)
    assert isinstance(status["inference_latency"], dict)
    assert all(key == key.lower() for key in status)
    assert diagnostics["queue"] == {"pending": 0, "max_frames": 1000}
    assert diagnostics["counters"]["frames_processed"] == 1
    assert diagnostics["cameras"]["front_door"]["name"] == "Front Door"
    assert diagnostics["cameras"]["front_door"]["last_frame_id"] is not None
