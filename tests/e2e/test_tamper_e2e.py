"""End to end through a real sidecar: images dropped into a camera folder whose view becomes
covered turn the camera's `tampered` binary sensor on (attributes kind/score/since) and fire
`secmon_tampered` once, with a logbook line and the event in diagnostics; when the view comes
back the sensor turns off."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from PIL import Image, ImageDraw
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import EVENT_TAMPERED
from custom_components.secmon.logbook import describe_tampered
from tests.integration.helpers import frame_id_of, wait_for, write_image
from tests.integration.sidecar_process import SidecarProcess

from .test_verdicts_e2e import CAMERA, set_up

pytestmark = pytest.mark.timeout(600)

SENSOR = "binary_sensor.front_door_tampered"
W, H = 480, 360


def _scene() -> Image.Image:
    rnd = random.Random(7)
    image = Image.new("RGB", (W, H), (110, 150, 200))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rnd.randrange(0, W - 40), rnd.randrange(0, H - 40)
        colour = (rnd.randrange(20, 235), rnd.randrange(20, 235), rnd.randrange(20, 235))
        draw.rectangle((x, y, x + rnd.randrange(20, 160), y + rnd.randrange(20, 140)),
                       fill=colour, outline=(10, 10, 10), width=2)
    return image


def _jpeg(image: Image.Image, seed: int) -> bytes:
    """The image with a few pixels changed per seed (every frame distinct), as a JPEG."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    rnd = random.Random(seed)
    for _ in range(20):
        x, y = rnd.randrange(0, W), rnd.randrange(0, H)
        draw.point((x, y), fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


async def test_a_covered_view_turns_tampered_on_then_off(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_dir: Path,
    camera_root: Path,
    sidecar: SidecarProcess,
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_TAMPERED, record)
    entry = await set_up(hass, sidecar, camera_root)
    coordinator = entry.runtime_data
    folder = camera_root / "Front Door"
    scene, cover = _scene(), Image.new("RGB", (W, H), (72, 60, 52))
    start = time.time() - 600

    async def show(index: int, image: Image.Image) -> None:
        """One frame, in order: dropped, then through the sidecar and back."""
        data = _jpeg(image, index)
        write_image(folder / f"img-{index:03d}.jpg", data, mtime=start + 10 * index)
        frame_id = frame_id_of(CAMERA, data)
        await wait_for(
            hass,
            lambda: (camera := coordinator.cameras.get(CAMERA)) is not None
            and camera.frame_id == frame_id,
            f"frame {index} through the sidecar",
        )

    for index in range(5):
        await show(index, scene)
    assert hass.states.get(SENSOR).state == "off"  # type: ignore[union-attr]
    for index in range(5, 9):
        await show(index, cover)
    state = hass.states.get(SENSOR)
    assert state is not None
    assert state.state == "on"
    assert state.attributes["device_class"] == "problem"
    assert state.attributes["kind"] == "covered"
    assert 0.5 < state.attributes["score"] <= 1.0
    assert state.attributes["since"].startswith(  # the first covered frame's capture time
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(start + 50))
    )
    assert len(events) == 1
    event = events[0]
    assert event.data["camera_id"] == CAMERA
    assert event.data["kind"] == "covered"
    assert event.data["entity_id"] == SENSOR
    line = describe_tampered(event.data)
    assert line["name"] == "Front Door"
    assert line["message"].startswith("view looks covered (")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    tamper = diagnostics["cameras"][CAMERA]["tamper"]
    assert tamper["kind"] == "covered"
    assert tamper["last_event"]["kind"] == "covered"

    # A restart restores the state from the stored newest result, without a new event.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected again")
    restored = hass.states.get(SENSOR)
    assert restored is not None
    assert (restored.state, restored.attributes["kind"]) == ("on", "covered")
    assert len(events) == 1

    for index in range(9, 13):  # the cover is taken away
        await show(index, scene)
    assert hass.states.get(SENSOR).state == "off"  # type: ignore[union-attr]
    assert hass.states.get(SENSOR).attributes["kind"] == "none"  # type: ignore[union-attr]
    assert len(events) == 1
