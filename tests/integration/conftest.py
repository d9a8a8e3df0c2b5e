"""Fixtures for the Home Assistant harness tests."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from unittest.mock import PropertyMock, patch

import grpc
import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_CLEAR_DELAY,
    CONF_DEBOUNCE,
    DOMAIN,
)

from .sidecar_process import SidecarProcess, free_port


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/secmon in every test."""


@pytest.fixture(scope="session", autouse=True)
def grpc_aio_initialised() -> None:
    """grpc.aio starts one process-wide poller thread on first use; start it before any test so
    the harness's thread-leak check does not attribute it to the first test that talks gRPC."""
    grpc.aio.init_grpc_aio()


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A private HA config directory (the durable queue lives there)."""
    path = tmp_path / "config"
    path.mkdir()
    hass.config.config_dir = str(path)
    return path


@pytest.fixture
def camera_root(hass: HomeAssistant, tmp_path: Path) -> Path:
    """An allow-listed camera root with one camera folder."""
    root = tmp_path / "cameras"
    (root / "Front Door").mkdir(parents=True)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return root


@pytest.fixture(scope="session")
def sidecar() -> Generator[SidecarProcess]:
    """A real `python -m sidecar --detector random:tiny` on loopback, for the whole session."""
    process = SidecarProcess()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def unused_address() -> str:
    """host:port where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def mock_config_entry(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, sidecar: SidecarProcess
) -> MockConfigEntry:
    """An entry for the session's sidecar and the test's camera root (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Sidecar {sidecar.address}",
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2, CONF_CLEAR_DELAY: 30.0},
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The entry, set up and connected to the sidecar."""
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Entities disabled by default are enabled (as in HA core's tests)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format (states and registry entries without volatile ids
    and times)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)
