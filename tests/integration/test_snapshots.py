"""Snapshots (syrupy, as HA core does) of every entity's registry entry, state and attributes,
and of diagnostics, for an entry restored from a database written by an earlier version while its
sidecar is away (so nothing depends on the sidecar's timing)."""

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
from custom_components.secmon.settings import database_path

FIXTURE_DB = Path(__file__).parent / "fixtures" / "queue_v2.db"
ENTRY_ID = "01JSECMONSNAPSHOTENTRY000000"
# Port 9 (discard): nothing listens on loopback, so the sidecar is away, always the same way.
AWAY = "127.0.0.1:9"
# Random per run: the camera's and image's access token (and the URL that carries it); in
# diagnostics the camera root (a temporary folder) and how often the stream has tried to connect.
VOLATILE_STATE = props("access_token", "entity_picture")
VOLATILE_DIAGNOSTICS = props("camera_root", "connection_attempts")


@pytest.fixture
def entry(hass: HomeAssistant, config_dir: Path, camera_root: Path) -> MockConfigEntry:
    """An entry whose database holds one camera, a queued frame and a stored verdict."""
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title=f"Sidecar {AWAY}",
        unique_id=AWAY,
        data={CONF_ADDRESS: AWAY, CONF_CAMERA_ROOT: str(camera_root), CONF_TOKEN: "secret"},
        version=1,
        minor_version=2,
    )
    config_entry.add_to_hass(hass)
    path = database_path(hass, ENTRY_ID)
    path.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE_DB, path)
    return config_entry


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
