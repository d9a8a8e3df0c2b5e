"""A token the sidecar rejects: setup fails with ConfigEntryAuthFailed, the reauth flow takes the
right one. Against a real sidecar started with --token."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import CONF_ADDRESS, CONF_CAMERA_ROOT, CONF_TOKEN, DOMAIN

from .flow_error_server import start_flow_error_server
from .helpers import state_of, wait_for
from .sidecar_process import SidecarProcess, free_port

TOKEN = "the-right-token"


@pytest.fixture(scope="module")
def token_sidecar() -> Generator[SidecarProcess]:
    """A real sidecar that requires TOKEN."""
    process = SidecarProcess(extra_args=("--token", TOKEN))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _entry(hass: HomeAssistant, sidecar: SidecarProcess, root: Path, token: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(root), CONF_TOKEN: token},
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    return entry


def _reauth_flows(hass: HomeAssistant, entry: MockConfigEntry) -> list[dict]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"].get("source") == SOURCE_REAUTH
        and flow["context"].get("entry_id") == entry.entry_id
    ]


async def test_rejected_token_starts_reauth_and_the_right_one_fixes_it(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, token_sidecar: SidecarProcess
) -> None:
    entry = _entry(hass, token_sidecar, camera_root, "a-wrong-token")
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = _reauth_flows(hass, entry)
    assert len(flows) == 1

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_TOKEN: "still-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_TOKEN] == TOKEN
    assert entry.state is ConfigEntryState.LOADED
    await wait_for(
        hass,
        lambda: state_of(hass, "binary_sensor.secmon_sidecar_connected") == STATE_ON,
        "connected with the new token",
    )


async def test_token_rejected_while_running_starts_reauth(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, token_sidecar: SidecarProcess
) -> None:
    """The sidecar was away at setup; when it answers, it refuses the token: reauth."""
    entry = _entry(hass, token_sidecar, camera_root, TOKEN)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.sidecar.connected, "connected")
    assert not _reauth_flows(hass, entry)

    # The stream reconnects with a token the sidecar no longer takes.
    entry.runtime_data.stream.token = "rotated-away"
    await hass.async_add_executor_job(token_sidecar.stop)
    await hass.async_add_executor_job(token_sidecar.start)
    await wait_for(hass, lambda: len(_reauth_flows(hass, entry)) == 1, "a reauth flow")
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_reauth_says_when_the_sidecar_is_away_or_not_ready(
    hass: HomeAssistant, camera_root: Path
) -> None:
    """The token cannot be checked while nothing answers, or while the model is loading: the
    form says which, and keeps the entry as it was."""
    port = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"127.0.0.1:{port}",
        data={
            CONF_ADDRESS: f"127.0.0.1:{port}",
            CONF_CAMERA_ROOT: str(camera_root),
            CONF_TOKEN: "old",
        },
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: "new"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    server = await start_flow_error_server(port, serving=False)
    try:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TOKEN: "new"}
        )
    finally:
        await server.stop(None)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_ready"}
    assert entry.data[CONF_TOKEN] == "old"
