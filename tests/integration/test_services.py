"""`secmon.analyze_image` against the real sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import CONF_ADDRESS, CONF_CAMERA_ROOT, DOMAIN

from .helpers import image_bytes, wait_for, write_image


async def test_analyze_file(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """A file in an allowed folder is analysed; the response carries the detections."""
    path = write_image(camera_root / "probe.jpg", image_bytes(20, size=(256, 192)))
    response = await hass.services.async_call(
        DOMAIN,
        "analyze_image",
        {"file_path": str(path), "threshold": 0.001},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["source"] == str(path)
    assert (response["width"], response["height"]) == (256, 192)
    assert response["detections"]
    for detection in response["detections"]:
        assert 0.001 <= detection["confidence"] <= 1.0
        box = detection["box"]
        assert 0 <= box["x_min"] <= box["x_max"] <= 256
        assert 0 <= box["y_min"] <= box["y_max"] <= 192


async def test_analyze_camera_snapshot(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """Any camera entity works as the source (here secmon's own)."""
    write_image(camera_root / "Front Door" / "snap.jpg", image_bytes(21, size=(300, 200)))
    camera = init_integration.runtime_data.cameras["front_door"]
    await wait_for(hass, lambda: camera.frame_id is not None, "first frame")
    response = await hass.services.async_call(
        DOMAIN,
        "analyze_image",
        {"entity_id": "camera.front_door"},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert (response["width"], response["height"]) == (300, 200)
    assert response["source"] == "camera.front_door"


@pytest.mark.parametrize(
    ("make_data", "error"),
    [
        (lambda root: {"file_path": "/etc/hostname"}, "path_not_allowed"),
        (lambda root: {"file_path": str(root / "missing.jpg")}, "file_not_readable"),
        (lambda root: {"file_path": str(root / "broken.jpg")}, "invalid_image"),
        (lambda root: {"file_path": str(root / "notes.jpg")}, "invalid_image"),
        (lambda root: {"entity_id": "camera.nope"}, "camera_image_unavailable"),
    ],
)
async def test_analyze_errors(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    camera_root: Path,
    make_data: object,
    error: str,
) -> None:
    """Bad input gives translated validation errors."""
    write_image(camera_root / "broken.jpg", image_bytes(22)[:200])
    write_image(camera_root / "notes.jpg", b"a shopping list, not a picture")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "analyze_image",
            make_data(camera_root),  # type: ignore[operator]
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == error
    assert err.value.translation_domain == DOMAIN
    # Said in words: no Python object reprs in what the user reads.
    assert "object at 0x" not in str(err.value.translation_placeholders)
    if "notes.jpg" in str(err.value.translation_placeholders):
        assert err.value.translation_placeholders["error"] == (
            "not an image in a format secmon reads (JPEG or PNG)"
        )


async def test_analyze_without_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry, camera_root: Path
) -> None:
    """No loaded entry: a translated error, not a crash."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "analyze_image",
            {"file_path": str(camera_root / "x.jpg")},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "no_sidecar"


async def test_analyze_with_the_sidecar_away(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, unused_address: str
) -> None:
    """The entry named by config_entry_id is used; its sidecar being away is a clear error."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=unused_address,
        data={CONF_ADDRESS: unused_address, CONF_CAMERA_ROOT: str(camera_root)},
        version=1,
        minor_version=2,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    path = write_image(camera_root / "still.jpg", image_bytes(23))
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "analyze_image",
            {"file_path": str(path), "config_entry_id": entry.entry_id},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "sidecar_unavailable"
