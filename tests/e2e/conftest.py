"""End-to-end fixtures: the real sidecar process, a real camera root, a real SQLite queue."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_DEBOUNCE,
    DOMAIN,
)
from custom_components.secmon.link import stream
from tests.integration.conftest import (  # noqa: F401 - the harness tests' fixtures, shared
    auto_enable_custom_integrations,
    camera_root,
    config_dir,
    entity_registry_enabled_by_default,
    grpc_aio_initialised,
)
from tests.integration.sidecar_process import SidecarProcess


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect quickly after the tests restart the sidecar (production caps at a few s)."""
    monkeypatch.setattr(stream, "RECONNECT_MAX", 1.0)


SIDECAR_KEY = pytest.StashKey[SidecarProcess]()


@pytest.fixture
def sidecar(request: pytest.FixtureRequest) -> Generator[SidecarProcess]:
    """A sidecar process of the test's own: tests kill and restart it."""
    process = SidecarProcess()
    request.node.stash[SIDECAR_KEY] = process
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, the sidecar's log goes into the report: its side of the story."""
    report = yield
    if report.failed and (process := item.stash.get(SIDECAR_KEY, None)) is not None:
        report.sections.append(("sidecar log", process.log()))
    return report


@pytest.fixture
def entry(
    hass: HomeAssistant,
    config_dir: Path,  # noqa: F811 - the imported fixture, requested
    camera_root: Path,  # noqa: F811 - the imported fixture, requested
    sidecar: SidecarProcess,
) -> MockConfigEntry:
    """A config entry for the test's sidecar (not yet set up)."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=sidecar.address,
        data={CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_DEBOUNCE: 0.2, "detection_threshold": 0.001},
    )
    config_entry.add_to_hass(hass)
    return config_entry
