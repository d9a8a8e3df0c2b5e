"""End to end with enrichment: images dropped into a camera folder -> real sidecar (tiny random
detector, LLM and enrichment models, real PP-OCR weights) -> batch -> enrichment -> prompt ->
verdict -> the event entity's and `secmon_event`'s attributes, `sensor.<cam>_description`, the
diagnostics' zoo; the known plates of the entry's options reach the sidecar and come back named in
the verdict. One verdict carries all six findings: caption, attributes, identities, plates,
posture and distance."""

from __future__ import annotations

import io
from collections.abc import Generator
from pathlib import Path

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from PIL import Image, ImageDraw, ImageFont
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_KNOWN_PLATES,
    DOMAIN,
    EVENT_SECURITY,
)
from tests.e2e.conftest import SIDECAR_KEY
from tests.integration.helpers import wait_for, write_image
from tests.integration.sidecar_process import SidecarProcess
from tests.integration.verdict_helpers import async_camera_history, verdict_options

CAMERA = "front_door"
PLATE = "AB12CDE"
ENRICHERS = ["caption", "attributes", "plates", "pose", "depth"]

# Enrichment on a busy 2-core machine: minutes, not seconds.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def enriching_sidecar(request: pytest.FixtureRequest) -> Generator[SidecarProcess]:
    """Every enricher on (tiny random models: the default with a random detector), with time
    budgets wide enough that a busy machine skips none of them."""
    process = SidecarProcess(
        extra_args=("--enrich-batch-time-s", "500", "--enrich-fast-path-time-s", "500")
    )
    request.node.stash[SIDECAR_KEY] = process  # its log goes into a failure's report
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


def dark_frame() -> bytes:
    """A black frame: the only picture on which the tiny random detector names people (every
    class ties on it), so the batch has a person for the pose model and a person identity."""
    out = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(out, "JPEG", quality=90)
    return out.getvalue()


async def test_enrichment_reaches_home_assistant(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_dir: Path,
    camera_root: Path,
    enriching_sidecar: SidecarProcess,
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
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.sidecar.connected, "connected")

    for n, shade in enumerate((90, 120)):
        write_image(camera_root / "Front Door" / f"plate-{n}.jpg", plates_everywhere(shade))
    write_image(camera_root / "Front Door" / "dark-2.jpg", dark_frame())
    await wait_for(hass, lambda: any(e.data["camera_id"] == CAMERA for e in events), "verdict")

    (stored,) = await async_camera_history(hass, entry, CAMERA)
    message = stored.record.message
    runs = {run.name: run for run in message.enrichers}
    assert list(runs) == ENRICHERS
    assert {run.status for run in runs.values()} == {"ran"}, runs
    assert "no person" not in runs["pose"].reason, runs["pose"]
    # What each enricher found, from the real (tiny random / real OCR) models.
    assert message.caption
    assert [a.name for a in message.scene_attributes] == ["lighting", "weather"]
    people = [o for o in message.objects if o.label == "person"]
    vehicles = [o for o in message.objects if o.identity.startswith("vehicle ")]
    assert people and vehicles, message.objects
    person, vehicle = people[0], vehicles[0]
    assert [a.name for a in person.attributes] == ["clothing", "carrying", "face"]
    assert [a.name for a in vehicle.attributes] == ["type", "colour"]
    assert person.identity.startswith("person ") and person.visits_24h >= 1
    assert person.posture in {"standing", "crouching", "lying", "arms raised", "unknown"}
    assert all(o.distance in {"near", "mid", "far"} for o in message.objects), message.objects
    named = next(o for o in message.objects if o.plate == PLATE)
    assert named.known_plate == "Anna's car"

    # The prompt the LLM got shows them: observations, untrusted text only in the data block
    # (the LLM answered: the many labels of a random detector still fit its context).
    assert not message.fallback, message.summary
    data, _, prompt = message.prompt.partition("⟦END UNTRUSTED DATA⟧")
    assert "Observations by image models" in prompt
    assert "- Scene: described in data field caption" in prompt
    assert "- Scene conditions: lighting: " in prompt
    assert f"identity {person.identity}, " in prompt and f"identity {vehicle.identity}, " in prompt
    assert f"{person.attributes[0].name}: {person.attributes[0].value}" in prompt
    if person.posture != "unknown":
        assert f"posture: {person.posture}" in prompt
    assert f"distance: {vehicle.distance}" in prompt
    assert "a plate was read, its text in data field plate_" in prompt
    assert "(a known plate, its owner's name in data field plate_owner_" in prompt
    assert PLATE not in prompt and "Anna" not in prompt
    assert f": {PLATE}" in data and "Anna s car" in data

    event = hass.states.get(f"event.{CAMERA}_security_event")
    assert event is not None
    assert event.attributes["event_id"] == stored.record.event_id
    assert event.attributes["caption"] == message.caption.strip()
    assert [run["name"] for run in event.attributes["enrichers"]] == ENRICHERS
    assert len(event.attributes["objects"]) == len(message.objects) >= 1
    shown = event.attributes["objects"]
    shown_person = next(o for o in shown if o["label"] == "person")
    assert shown_person["identity"] == person.identity
    assert shown_person["posture"] == person.posture
    assert shown_person["attributes"] == {a.name: a.value for a in person.attributes}
    assert all(o["distance"] in {"near", "mid", "far"} for o in shown)
    assert person.identity in event.attributes["identities"]
    assert vehicle.identity in event.attributes["identities"]
    assert event.attributes["scene"] == {a.name: a.value for a in message.scene_attributes}
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

    # Diagnostics list the sidecar's zoo as its status reports it.
    await wait_for(
        hass,
        lambda: (
            (status := coordinator.sidecar.status) is not None
            and status.enrichment.batches_enriched >= 1
        ),
        "the zoo's status",
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    zoo = diagnostics["enrichment"]
    assert zoo["enrichers"] == ENRICHERS
    assert zoo["device"] == "cpu"
    assert 0 < zoo["in_use_bytes"] <= zoo["budget_bytes"]
    assert zoo["loads"] >= len(ENRICHERS)
    assert {model["name"] for model in zoo["models"]} == set(ENRICHERS)
    assert all(model["weights_bytes"] > 0 for model in zoo["models"])
    # ...and so do the sidecar's zoo sensors.
    loads = hass.states.get("sensor.secmon_sidecar_enrichment_model_loads")
    assert loads is not None and int(loads.state) == zoo["loads"]
    loaded = hass.states.get("sensor.secmon_sidecar_enrichment_models_loaded")
    assert loaded is not None
    assert int(loaded.state) == sum(1 for model in zoo["models"] if model["loaded"])
    budget = hass.states.get("sensor.secmon_sidecar_enrichment_memory_budget")
    assert budget is not None and float(budget.state) > 0
