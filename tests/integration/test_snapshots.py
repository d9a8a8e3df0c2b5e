"""Snapshots (syrupy, as HA core does) of every entity's registry entry, state and attributes,
and of diagnostics, for an entry restored from a database written by an earlier version while its
sidecar is away (so nothing depends on the sidecar's timing); and of the states the sidecar's
answers make, with a scripted sidecar that answers the same way every run."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.secmon.const import CONF_ADDRESS, CONF_CAMERA_ROOT, CONF_TOKEN, DOMAIN
from custom_components.secmon.link.proto import secmon_pb2
from custom_components.secmon.settings import database_path

from .adversarial.hostile_sidecar import HostileSidecar, start_hostile_sidecar, stop
from .fixtures import write_queue_v2_db as v2
from .helpers import wait_for
from .sidecar_process import free_port

FIXTURE_DB = Path(__file__).parent / "fixtures" / "queue_v2.db"
ENTRY_ID = "01JSECMONSNAPSHOTENTRY000000"
# Port 9 (discard): nothing listens on loopback, so the sidecar is away, always the same way.
AWAY = "127.0.0.1:9"
# Random per run: the camera's and image's access token (and the URL that carries it); in
# diagnostics the camera root (a temporary folder) and how often the stream has tried to connect.
VOLATILE_STATE = props("access_token", "entity_picture")
VOLATILE_DIAGNOSTICS = props("camera_root", "connection_attempts")


def _restored_entry(hass: HomeAssistant, camera_root: Path, address: str) -> MockConfigEntry:
    """An entry whose database holds one camera, a queued frame and a stored verdict."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=f"Sidecar {address}",
        unique_id=address,
        data={CONF_ADDRESS: address, CONF_CAMERA_ROOT: str(camera_root), CONF_TOKEN: "secret"},
        version=1,
        minor_version=2,
    )
    config_entry.add_to_hass(hass)
    path = database_path(hass, ENTRY_ID)
    path.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE_DB, path)
    return config_entry


@pytest.fixture
def entry(hass: HomeAssistant, config_dir: Path, camera_root: Path) -> MockConfigEntry:
    """The restored entry, its sidecar away."""
    return _restored_entry(hass, camera_root, AWAY)


async def _settled(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Wait until setup's work is done, including the media measurement, which the first
    retention run makes as a background task (not awaited by `async_block_till_done`)."""
    await hass.async_block_till_done()
    await entry.runtime_data.async_run_retention()
    await hass.async_block_till_done()


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.CALENDAR,
        Platform.CAMERA,
        Platform.EVENT,
        Platform.IMAGE,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SENSOR,
        Platform.SWITCH,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    with patch("custom_components.secmon.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await _settled(hass, entry)
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert entities
    assert {e.domain for e in entities} == {platform}
    for entity in sorted(entities, key=lambda e: e.entity_id):
        assert entity.disabled_by is None
        assert entity == snapshot(name=f"{entity.entity_id}-entry")
        state = hass.states.get(entity.entity_id)
        assert state is not None, entity.entity_id
        assert state == snapshot(name=f"{entity.entity_id}-state", exclude=VOLATILE_STATE)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _settled(hass, entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics == snapshot(exclude=VOLATILE_DIAGNOSTICS)


# What the scripted sidecar reports: every field a sensor or the device shows, a GPU included.
SCRIPTED_STATUS = secmon_pb2.SidecarStatus(
    ready=True,
    server_version="1.2.3",
    detector_model="PekingU/rtdetr_v2_r18vd",
    llm_model="nemotron-test.gguf",
    open_batches=2,
    pending_verdicts=1,
    gpus=[
        secmon_pb2.GpuStatus(
            name="Test GPU",
            utilization_percent=37.5,
            memory_used_bytes=3 * 2**30,
            memory_total_bytes=24 * 2**30,
            temperature_c=55.0,
        )
    ],
)


def _scripted_result(frame: secmon_pb2.Frame, seen: int) -> secmon_pb2.FrameResult:
    result = secmon_pb2.FrameResult(
        frame_id=frame.frame_id,
        camera_id=frame.camera_id,
        width=320,
        height=240,
        inference_ms=42.5,
    )
    for label, confidence in (("person", 0.93), ("car", 0.81), ("person", 0.62)):
        result.detections.add(
            label=label,
            confidence=confidence,
            box=secmon_pb2.Box(x_min=10, y_min=20, x_max=110, y_max=200),
        )
    return result


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "config_dir")
@pytest.mark.parametrize("platform", [Platform.BINARY_SENSOR, Platform.SENSOR])
async def test_entities_with_the_sidecar_up(
    hass: HomeAssistant,
    camera_root: Path,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """The states and attributes of what the sidecar computes (unavailable above), once it has
    answered the queued frame and reported its status: detections, latency, LLM, batches, GPU."""
    port = free_port()
    server = await start_hostile_sidecar(port, HostileSidecar(_scripted_result, SCRIPTED_STATUS))
    try:
        entry = _restored_entry(hass, camera_root, f"127.0.0.1:{port}")
        with patch("custom_components.secmon.PLATFORMS", [platform]):
            assert await hass.config_entries.async_setup(entry.entry_id)
            coordinator = entry.runtime_data
            await wait_for(
                hass,
                lambda: (
                    coordinator.sidecar.connected
                    and coordinator.sidecar.status is not None
                    and coordinator.queue_depth == 0
                    and coordinator.cameras[v2.CAMERA_ID].frame_id == v2.QUEUED_FRAME
                ),
                "the queued frame answered and the status read",
            )
            await _settled(hass, entry)
            entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
            assert {e.domain for e in entities} == {platform}
            for entity in sorted(entities, key=lambda e: e.entity_id):
                state = hass.states.get(entity.entity_id)
                assert state is not None, entity.entity_id
                assert state == snapshot(name=f"{entity.entity_id}-up", exclude=VOLATILE_STATE)
            assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await stop(server)
