"""End to end with enrichment: images dropped into a camera folder -> real sidecar (tiny random
detector, LLM and enrichment models, real PP-OCR weights) -> batch -> enrichment -> verdict -> the
event entity's and `secmon_event`'s attributes, `sensor.<cam>_description`; the known plates of
the entry's options reach the sidecar and come back named in the verdict."""

from __future__ import annotations

import io
from collections.abc import Generator
from pathlib import Path

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from PIL import Image, ImageDraw, ImageFont
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_KNOWN_PLATES,
    DOMAIN,
    EVENT_SECURITY,
)
from tests.integration.helpers import wait_for, write_image
from tests.integration.sidecar_process import SidecarProcess
from tests.integration.verdict_helpers import async_camera_history, verdict_options

CAMERA = "front_door"
PLATE = "AB12CDE"
ENRICHERS = ["caption", "attributes", "plates", "pose", "depth"]

# Enrichment on a busy 2-core machine: minutes, not seconds.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def enriching_sidecar() -> Generator[SidecarProcess]:
    """Every enricher on (tiny random models: the default with a random detector), with time
    budgets wide enough that a busy machine skips none of them."""
    process = SidecarProcess(
        extra_args=("--enrich-batch-time-s", "500", "--enrich-fast-path-time-s", "500")
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def plates_everywhere(shade: int) -> bytes:
    """A large frame tiled with the plate: the tiny random detector's boxes are small (a few
    percent of the frame), so the frame is large enough that the crop of whatever it calls a
    vehicle holds a whole plate for the OCR to read."""
    image = Image.new("RGB", (4000, 3000), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=20)
    for y in range(4, 3000 - 30, 40):
        for x in range(4, 4000 - 105, 125):
            draw.rectangle((x, y, x + 100, y + 28), fill="white", outline="black", width=1)
            draw.text((x + 5, y + 3), PLATE, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def test_enrichment_reaches_home_assistant(
    hass: HomeAssistant, config_dir: Path, camera_root: Path, enriching_sidecar: SidecarProcess
) -> None:
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_SECURITY, record)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=enriching_sidecar.address,
        data={CONF_ADDRESS: enriching_sidecar.address, CONF_CAMERA_ROOT: str(camera_root)},
        options={
            **verdict_options(window=300.0, idle=10.0),
            CONF_KNOWN_PLATES: {PLATE: "Anna's car"},
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected")

    for n, shade in enumerate((90, 120)):
        write_image(camera_root / "Front Door" / f"plate-{n}.jpg", plates_everywhere(shade))
    await wait_for(hass, lambda: any(e.data["camera_id"] == CAMERA for e in events), "verdict")

    (stored,) = await async_camera_history(hass, entry, CAMERA)
    message = stored.record.message
    runs = {run.name: run for run in message.enrichers}
    assert list(runs) == ENRICHERS
    assert runs["caption"].status == "ran", runs["caption"]
    assert runs["plates"].status == "ran", runs["plates"]
    assert message.caption

    event = hass.states.get(f"event.{CAMERA}_security_event")
    assert event is not None
    assert event.attributes["event_id"] == stored.record.event_id
    assert event.attributes["caption"] == message.caption.strip()
    assert [run["name"] for run in event.attributes["enrichers"]] == ENRICHERS
    assert len(event.attributes["objects"]) == len(message.objects) >= 1
    # The OCR read the plate on a vehicle's crop; the sidecar named it from the entry's option.
    assert {"plate": PLATE, "known": "Anna's car"} in event.attributes["plates"], message.objects
    (bus_event,) = [e for e in events if e.data["camera_id"] == CAMERA]
    assert bus_event.data["caption"] == event.attributes["caption"]
    assert bus_event.data["plates"] == event.attributes["plates"]
    assert bus_event.data["identities"] == event.attributes["identities"]

    description = hass.states.get(f"sensor.{CAMERA}_description")
    assert description is not None
    caption = message.caption.strip()
    assert description.state == (caption if len(caption) <= 255 else caption[:254].rstrip() + "…")
    assert description.attributes["caption"] == event.attributes["caption"]
    assert description.attributes["verdict_id"] == stored.record.verdict_id
