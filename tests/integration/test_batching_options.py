"""Event batching options: the options flow, and what the integration pushes to the sidecar."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
)
from custom_components.secmon.link.proto import secmon_pb2

from .helpers import wait_for


async def test_defaults_sent_in_hello(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Without options: 90 s window, 30 s idle, fast path for a person at 0.90; the home's
    time zone goes with Hello."""
    config = init_integration.runtime_data.stream.config
    assert config.batching == secmon_pb2.BatchingConfig(
        window_seconds=90.0,
        idle_seconds=30.0,
        fast_path_labels=["person"],
        fast_path_confidence=0.9,
        fast_path_disabled=False,
    )
    assert hass.config.time_zone


async def test_options_flow_batching(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Batching options are validated, stored, and pushed with the new session's Hello."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema_keys = {str(key) for key in result["data_schema"].schema}
    assert {CONF_BATCH_WINDOW, CONF_BATCH_IDLE, CONF_FAST_PATH_LABELS} <= schema_keys

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_BATCH_WINDOW: 20, CONF_BATCH_IDLE: 45}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BATCH_IDLE: "idle_above_window"}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_BATCH_WINDOW: 120,
            CONF_BATCH_IDLE: 15,
            CONF_FAST_PATH_LABELS: ["person", "car"],
            CONF_FAST_PATH_CONFIDENCE: 0.75,
        },
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    runtime = init_integration.runtime_data
    assert runtime.stream.config.batching == secmon_pb2.BatchingConfig(
        window_seconds=120.0,
        idle_seconds=15.0,
        fast_path_labels=["person", "car"],
        fast_path_confidence=0.75,
    )
    await wait_for(hass, lambda: runtime.stream.sessions >= 1, "a session with the new Hello")


async def test_no_fast_path_labels_disables_it(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """An empty label list turns the fast path off (the contract's empty list means default)."""
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, CONF_FAST_PATH_LABELS: []}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    batching = mock_config_entry.runtime_data.stream.config.batching
    assert batching.fast_path_disabled is True
    assert list(batching.fast_path_labels) == []
