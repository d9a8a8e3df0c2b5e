"""Config, reconfigure and options flows."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pytest
import voluptuous as vol
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.selector import NumberSelector
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_BATCH_IDLE,
    CONF_BATCH_WINDOW,
    CONF_CAMERA_ROOT,
    CONF_CLASSES,
    CONF_CLEAR_DELAY,
    CONF_CLIP_MAX_FRAMES,
    CONF_CLIP_RATE,
    CONF_DEBOUNCE,
    CONF_DELETE_UPLOADS_DAYS,
    CONF_FAST_PATH_CONFIDENCE,
    CONF_FAST_PATH_LABELS,
    CONF_KEEP_CLIPS_DAYS,
    CONF_KEEP_EVENTS_DAYS,
    CONF_MEDIA_CAP_GB,
    CONF_POLLING,
    CONF_QUEUE_BOUND,
    CONF_THRESHOLD,
    CONF_TOKEN,
    DOMAIN,
)

from .flow_error_server import start_flow_error_server
from .sidecar_process import SidecarProcess, free_port

pytestmark = pytest.mark.usefixtures("config_dir")


@pytest.fixture
def outside_folder(tmp_path: Path) -> Path:
    """An existing folder outside allowlist_external_dirs."""
    outside = Path(f"{tmp_path}-outside")
    outside.mkdir()
    return outside


async def _start_user_flow(hass: HomeAssistant, user_input: dict[str, str]) -> dict:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def test_user_flow_creates_entry(
    hass: HomeAssistant, sidecar: SidecarProcess, camera_root: Path
) -> None:
    """A healthy sidecar and an allowed folder make an entry, unique per address."""
    result = await _start_user_flow(
        hass, {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Sidecar {sidecar.address}"
    assert result["data"] == {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
    assert result["result"].unique_id == sidecar.address
    await hass.async_block_till_done()

    again = await _start_user_flow(
        hass, {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"


async def test_user_flow_cannot_connect_then_recovers(
    hass: HomeAssistant, sidecar: SidecarProcess, camera_root: Path, unused_address: str
) -> None:
    """Nothing listening: cannot_connect on the address; fixing it finishes the flow."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ADDRESS: "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("address", "folder", "errors"),
    [
        ("no-port", "ok", {CONF_ADDRESS: "invalid_address"}),
        ("127.0.0.1:99999", "ok", {CONF_ADDRESS: "invalid_address"}),
        ("sidecar", "missing", {CONF_CAMERA_ROOT: "folder_not_found"}),
        ("sidecar", "relative", {CONF_CAMERA_ROOT: "folder_not_found"}),
        ("sidecar", "not_allowed", {CONF_CAMERA_ROOT: "folder_not_allowed"}),
    ],
)
async def test_user_flow_input_errors(
    hass: HomeAssistant,
    *,
    sidecar: SidecarProcess,
    camera_root: Path,
    outside_folder: Path,
    address: str,
    folder: str,
    errors: dict[str, str],
) -> None:
    """Bad addresses and folders are reported on their field."""
    folders = {
        "ok": str(camera_root),
        "missing": str(camera_root / "nope"),
        "relative": "cameras",
        "not_allowed": str(outside_folder),
    }
    result = await _start_user_flow(
        hass,
        {
            CONF_ADDRESS: sidecar.address if address == "sidecar" else address,
            CONF_CAMERA_ROOT: folders[folder],
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


async def test_user_flow_not_ready(hass: HomeAssistant, camera_root: Path) -> None:
    """Health NOT_SERVING (model still loading) is its own error."""
    port = free_port()
    server = await start_flow_error_server(port, serving=False)
    try:
        result = await _start_user_flow(
            hass, {CONF_ADDRESS: f"127.0.0.1:{port}", CONF_CAMERA_ROOT: str(camera_root)}
        )
    finally:
        await server.stop(None)
    assert result["errors"] == {CONF_ADDRESS: "not_ready"}


async def test_user_flow_unexpected_error(
    hass: HomeAssistant, sidecar: SidecarProcess, camera_root: Path
) -> None:
    """A failure the check does not know is logged and reported as unknown, not raised."""
    with patch(
        "custom_components.secmon.config_flow.async_check_sidecar",
        side_effect=RuntimeError("boom"),
    ):
        result = await _start_user_flow(
            hass, {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}


async def test_user_flow_token(hass: HomeAssistant, camera_root: Path) -> None:
    """A rejected token is invalid_auth; the right one is stored."""
    port = free_port()
    server = await start_flow_error_server(port, serving=True, token="s3cret")
    try:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        user_input = {
            CONF_ADDRESS: f"127.0.0.1:{port}",
            CONF_CAMERA_ROOT: str(camera_root),
            CONF_TOKEN: "wrong",
        }
        result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
        assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**user_input, CONF_TOKEN: "s3cret"}
        )
    finally:
        await server.stop(None)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_TOKEN] == "s3cret"
    await hass.async_block_till_done()


async def test_reconfigure_changes_folder(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: SidecarProcess, tmp_path: Path
) -> None:
    """Reconfigure keeps the entry and reloads it with the new folder."""
    new_root = tmp_path / "other-cameras"
    new_root.mkdir()
    result = await init_integration.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(new_root)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert init_integration.data[CONF_CAMERA_ROOT] == str(new_root)
    assert init_integration.runtime_data.settings.camera_root == new_root
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_reconfigure_errors_and_address_conflict(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: SidecarProcess,
    camera_root: Path,
    unused_address: str,
) -> None:
    """Errors show on the form; an address another entry owns aborts."""
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_ADDRESS: "cannot_connect"}

    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="127.0.0.1:1",
        data={CONF_ADDRESS: "127.0.0.1:1", CONF_CAMERA_ROOT: str(camera_root)},
    )
    other.add_to_hass(hass)
    result = await other.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: sidecar.address, CONF_CAMERA_ROOT: str(camera_root)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_options_flow_reloads(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Options are stored and the running entry picks them up."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_THRESHOLD: 0.35,
            CONF_DEBOUNCE: 1.5,
            CONF_POLLING: True,
            CONF_CLASSES: ["person", "car"],
            CONF_CLEAR_DELAY: 12,
            CONF_QUEUE_BOUND: 250.0,
        },
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options[CONF_QUEUE_BOUND] == 250
    settings = init_integration.runtime_data.settings
    assert settings.threshold == 0.35
    assert settings.polling is True
    assert settings.classes == ("person", "car")
    assert settings.queue_bound == 250
    assert init_integration.runtime_data.watcher.polling is True


async def test_options_number_fields(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Every number on the options form: its range, step, unit and slider or box."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    numbers = {
        str(key): selector.config
        for key, selector in result["data_schema"].schema.items()
        if isinstance(selector, NumberSelector)
    }

    def box(low: float, high: float, step: float, unit: str | None = None) -> dict[str, object]:
        config: dict[str, object] = {"min": low, "max": high, "step": step, "mode": "box"}
        if unit is not None:
            config["unit_of_measurement"] = unit
        return config

    def slider(low: float, high: float, step: float) -> dict[str, object]:
        return {"min": low, "max": high, "step": step, "mode": "slider"}

    assert numbers == {
        CONF_THRESHOLD: slider(0.01, 0.95, 0.01),
        CONF_DEBOUNCE: box(0.1, 30, 0.1, "s"),
        CONF_CLEAR_DELAY: box(1, 3600, 1, "s"),
        CONF_QUEUE_BOUND: box(10, 100_000, 1),
        CONF_BATCH_WINDOW: box(5, 3600, 1, "s"),
        CONF_BATCH_IDLE: box(1, 600, 1, "s"),
        CONF_FAST_PATH_CONFIDENCE: slider(0.05, 1.0, 0.01),
        CONF_CLIP_RATE: box(0.1, 10, 0.1, "frames/s"),
        CONF_CLIP_MAX_FRAMES: box(1, 200, 1),
        CONF_KEEP_EVENTS_DAYS: box(1, 365, 1, "d"),
        CONF_KEEP_CLIPS_DAYS: box(1, 365, 1, "d"),
        CONF_MEDIA_CAP_GB: box(0.1, 10_000, 0.1, "GB"),
        CONF_DELETE_UPLOADS_DAYS: box(0, 365, 1, "d"),
    }


async def test_options_empty_lists_and_bags(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Classes and fast-path objects may be left empty (all classes; no fast path), bags and
    suitcases can be picked, and the threshold goes down to 0.01."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    schema = result["data_schema"].schema
    fields = {str(key): (key, value) for key, value in schema.items()}
    for name in (CONF_CLASSES, CONF_FAST_PATH_LABELS):
        key, selector = fields[name]
        assert isinstance(key, vol.Optional), name
        assert {"backpack", "handbag", "suitcase"} <= set(selector.config["options"])
    assert fields[CONF_THRESHOLD][1].config["min"] == 0.01
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_THRESHOLD: 0.01,
            CONF_DEBOUNCE: 1.0,
            CONF_POLLING: False,
            CONF_CLEAR_DELAY: 12,
            CONF_QUEUE_BOUND: 100,
            CONF_BATCH_WINDOW: 90,
            CONF_BATCH_IDLE: 30,
            CONF_FAST_PATH_CONFIDENCE: 0.9,
        },
    )
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "context"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options[CONF_CLASSES] == []
    assert init_integration.options[CONF_FAST_PATH_LABELS] == []
    settings = init_integration.runtime_data.settings
    assert settings.classes == ()
    assert settings.threshold == 0.01
