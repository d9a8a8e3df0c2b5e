"""A verdict's enrichment (what the image models saw) in HA: the event entity's and `secmon_event`'s
attributes, `sensor.<cam>_description`, bounded sizes, and the recorder kept free of the bulky
parts. Verdicts enter where the sidecar stream hands them over (the coordinator's
`async_on_verdict`): storage, the announcement rule and the entities are the real ones; the sidecar
itself is away, so a verdict can carry more than a tiny model would ever write."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

from custom_components.secmon.const import (
    CONF_ADDRESS,
    CONF_CAMERA_ROOT,
    CONF_KNOWN_PLATES,
    DOMAIN,
    EVENT_SECURITY,
)
from custom_components.secmon.link.proto import secmon_pb2

from .helpers import image_bytes, state_of, wait_for, write_image

AWAY = "127.0.0.1:9"
CAMERA = "front_door"
EVENT = f"event.{CAMERA}_security_event"
DESCRIPTION = f"sensor.{CAMERA}_description"
# HA's recorder warns when a state's attributes exceed this.
RECORDER_ATTRIBUTE_LIMIT = 16 * 1024
_ids = itertools.count(1)


@pytest.fixture
async def entry(hass: HomeAssistant, config_dir: Path, camera_root: Path) -> MockConfigEntry:
    """One camera, the sidecar away."""
    (camera_root / "Front Door").mkdir(exist_ok=True)
    config_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=AWAY,
        data={CONF_ADDRESS: AWAY, CONF_CAMERA_ROOT: str(camera_root)},
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: hass.states.get(EVENT) is not None, "event entity")
    return config_entry


def person(**extra: Any) -> secmon_pb2.EnrichedObject:
    fields: dict[str, Any] = {
        "identity_id": 7,
        "identity": "person 7",
        "visits_24h": 3,
        "posture": "standing",
        "distance": "near",
        "movement": "approaching",
        **extra,
    }
    obj = secmon_pb2.EnrichedObject(
        label="person",
        frame_id="f1",
        confidence=0.91,
        attributes=[
            secmon_pb2.Attribute(name="clothing", value="dark jacket", score=0.6),
            secmon_pb2.Attribute(name="carrying", value="parcel", score=0.7),
        ],
        **fields,
    )
    match = obj.matches.add(camera_id="back_yard", camera_name="Back Yard", similarity=0.93)
    match.seen_at.FromDatetime(dt_util.utcnow())
    return obj


def car() -> secmon_pb2.EnrichedObject:
    return secmon_pb2.EnrichedObject(
        label="car",
        frame_id="f2",
        confidence=0.8,
        identity_id=2,
        identity="vehicle 2",
        visits_24h=1,
        plate="AB12CDE",
        plate_score=0.95,
        known_plate="Anna's car",
        distance="mid",
        movement="steady",
    )


async def hand_over(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    *,
    caption: str = "",
    objects: list[secmon_pb2.EnrichedObject] | None = None,
    **fields: Any,
) -> secmon_pb2.Verdict:
    """A verdict as the stream hands it over."""
    n = next(_ids)
    message = secmon_pb2.Verdict(
        verdict_id=f"verdict-{n}",
        event_id=f"event-{n}",
        camera_id=CAMERA,
        camera_name="Front Door",
        summary="Someone at the door",
        caption=caption,
        objects=objects or [],
        **{"risk_score": 40, "risk_level": secmon_pb2.RISK_LEVEL_MEDIUM, **fields},
    )
    message.started_at.FromDatetime(dt_util.utcnow())
    message.created_at.FromDatetime(dt_util.utcnow())
    assert await entry.runtime_data.async_on_verdict(message)
    await hass.async_block_till_done()
    return message


ENRICHED = {
    "scene_attributes": [
        secmon_pb2.Attribute(name="lighting", value="night", score=0.8),
        secmon_pb2.Attribute(name="weather", value="rain", score=0.5),
    ],
    "enrichers": [
        secmon_pb2.EnricherRun(name="caption", status="ran", ms=812.34),
        secmon_pb2.EnricherRun(name="attributes", status="ran", ms=40.0),
        secmon_pb2.EnricherRun(name="plates", status="ran", reason="1 plate(s) read", ms=30.0),
        secmon_pb2.EnricherRun(
            name="pose", status="skipped", reason="no room in the memory budget"
        ),
        secmon_pb2.EnricherRun(name="depth", status="off"),
    ],
    "enrichment_ms": 901.5,
}


async def test_enrichment_reaches_the_event_the_bus_and_the_description(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    events = async_capture_events(hass, EVENT_SECURITY)
    caption = "A person in a dark jacket holds a parcel at the front door; a car is parked."
    await hand_over(hass, entry, caption=caption, objects=[person(), car()], **ENRICHED)

    state = hass.states.get(EVENT)
    assert state is not None
    attributes = state.attributes
    assert attributes["caption"] == caption
    assert attributes["scene"] == {"lighting": "night", "weather": "rain"}
    assert attributes["identities"] == ["person 7", "vehicle 2"]
    assert attributes["plates"] == [{"plate": "AB12CDE", "known": "Anna's car"}]
    walker, parked = attributes["objects"]
    assert walker["attributes"] == {"clothing": "dark jacket", "carrying": "parcel"}
    assert (walker["identity"], walker["identity_id"], walker["visits_24h"]) == ("person 7", 7, 3)
    (seen,) = walker["also_seen"]
    assert (seen["camera_name"], seen["similarity"]) == ("Back Yard", 0.93)
    assert dt_util.parse_datetime(seen["seen_at"]) is not None
    assert (walker["posture"], walker["distance"], walker["movement"]) == (
        "standing",
        "near",
        "approaching",
    )
    assert "plate" not in walker
    assert (parked["plate"], parked["known_plate"]) == ("AB12CDE", "Anna's car")
    assert "posture" not in parked
    runs = {run["name"]: run for run in attributes["enrichers"]}
    assert runs["caption"] == {"name": "caption", "status": "ran", "reason": "", "ms": 812.3}
    assert runs["pose"]["status"] == "skipped"
    assert runs["pose"]["reason"] == "no room in the memory budget"
    assert runs["depth"]["status"] == "off"
    assert attributes["enrichment_ms"] == 901.5
    # The bulky parts stay out of the recorder's history.
    assert state.state_info is not None
    assert {"objects", "enrichers"} <= state.state_info["unrecorded_attributes"]
    assert "caption" not in state.state_info["unrecorded_attributes"]

    (event,) = events
    for key in ("caption", "scene", "objects", "identities", "plates", "enrichers"):
        assert event.data[key] == attributes[key], key

    description = hass.states.get(DESCRIPTION)
    assert description is not None
    assert description.state == caption
    assert description.attributes["caption"] == caption
    assert description.attributes["event_id"] == event.data["event_id"]
    assert description.attributes["plates"] == [{"plate": "AB12CDE", "known": "Anna's car"}]
    assert description.attributes["identities"] == ["person 7", "vehicle 2"]


async def test_a_verdict_without_enrichment(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Enrichment off: empty values, no description; a later verdict without a caption keeps the
    last description."""
    await hand_over(hass, entry)
    attributes = hass.states.get(EVENT).attributes  # type: ignore[union-attr]
    assert attributes["caption"] is None
    assert attributes["objects"] == attributes["plates"] == attributes["enrichers"] == []
    assert hass.states.get(DESCRIPTION).state == ""  # type: ignore[union-attr]

    await hand_over(hass, entry, caption="A fox crosses the lawn.")
    assert hass.states.get(DESCRIPTION).state == "A fox crosses the lawn."  # type: ignore[union-attr]
    await hand_over(hass, entry, risk_score=10, risk_level=secmon_pb2.RISK_LEVEL_LOW)
    assert hass.states.get(DESCRIPTION).state == "A fox crosses the lawn."  # type: ignore[union-attr]


async def test_attributes_stay_bounded(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Model text of any length and many objects: the state and its attributes stay within what
    HA stores and records."""
    long = "word " * 2000
    flood = [person(plate="X" * 500, known_plate="N" * 500, posture=long) for _ in range(60)]
    for obj in flood:
        for _ in range(20):
            obj.matches.add(camera_id="c" * 300, camera_name=long, similarity=0.9)
            obj.attributes.add(name=long, value=long)
    runs = [secmon_pb2.EnricherRun(name=long, status="skipped", reason=long) for _ in range(40)]
    await hand_over(hass, entry, caption=long, objects=flood, enrichers=runs)

    state = hass.states.get(EVENT)
    assert state is not None and state.state_info is not None
    unrecorded = state.state_info["unrecorded_attributes"]
    recorded = {k: v for k, v in state.attributes.items() if k not in unrecorded}
    assert len(json.dumps(recorded)) < RECORDER_ATTRIBUTE_LIMIT
    assert len(json.dumps(dict(state.attributes))) < 4 * RECORDER_ATTRIBUTE_LIMIT
    assert len(state.attributes["objects"]) == 10
    assert len(state.attributes["caption"]) <= 1000
    assert state.attributes["caption"].endswith("…")
    description = hass.states.get(DESCRIPTION)
    assert description is not None
    assert len(description.state) == 255 and description.state.endswith("…")


async def test_description_restored_after_reload(
    hass: HomeAssistant, entry: MockConfigEntry, camera_root: Path
) -> None:
    """The description is the stored current verdict's caption: back after a reload."""
    # A camera is restored once it has sent a frame (queued here: the sidecar is away).
    write_image(camera_root / "Front Door" / "a.jpg", image_bytes(40))
    coordinator = entry.runtime_data
    await wait_for(hass, lambda: coordinator.queue_depth == 1, "frame queued")
    await hand_over(hass, entry, caption="Two people at the gate.", objects=[person()])
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        hass,
        lambda: getattr(hass.states.get(DESCRIPTION), "state", None) == "Two people at the gate.",
        "description restored",
    )
    description = hass.states.get(DESCRIPTION)
    assert description is not None
    assert description.attributes["identities"] == ["person 7"]


async def test_diagnostics_list_the_zoo_and_redact_what_cameras_read(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, config_dir: Path, camera_root: Path
) -> None:
    """The zoo's state as the sidecar reports it; captions, plates and known plates redacted."""
    (camera_root / "Front Door").mkdir(exist_ok=True)
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=AWAY,
        data={CONF_ADDRESS: AWAY, CONF_CAMERA_ROOT: str(camera_root)},
        options={CONF_KNOWN_PLATES: {"AB12CDE": "Anna's car"}},
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: hass.states.get(EVENT) is not None, "event entity")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["enrichment"] is None

    status = secmon_pb2.SidecarStatus(
        ready=True,
        enrichment=secmon_pb2.EnrichmentStatus(
            enrichers=["caption", "plates"],
            device="cuda",
            budget_bytes=4 << 30,
            in_use_bytes=1 << 30,
            evictions=2,
            skips=1,
            out_of_memory=1,
            models=[
                secmon_pb2.ZooModel(
                    name="caption", spec="florence-community/Florence-2-base", loaded=True
                ),
                secmon_pb2.ZooModel(name="plates", disabled="rapidocr-onnxruntime is missing"),
            ],
        ),
    )
    entry.runtime_data.async_on_status(status)
    caption = "A person reads the plate of Anna's car."
    await hand_over(hass, entry, caption=caption, objects=[car()], **ENRICHED)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    zoo = diagnostics["enrichment"]
    assert zoo["enrichers"] == ["caption", "plates"]
    assert (zoo["budget_bytes"], zoo["evictions"], zoo["out_of_memory"]) == (4 << 30, 2, 1)
    caption_model, plates_model = zoo["models"]
    assert caption_model["loaded"] is True
    assert plates_model["disabled"] == "rapidocr-onnxruntime is missing"
    assert diagnostics["entry"]["options"][CONF_KNOWN_PLATES] == "**REDACTED**"
    (verdict,) = diagnostics["verdicts"]["recent"]
    assert verdict["caption"] == verdict["plates"] == "**REDACTED**"
    assert verdict["objects"][0]["plate"] == verdict["objects"][0]["known_plate"] == "**REDACTED**"
    assert verdict["caption_chars"] == len(caption)
    assert [run["name"] for run in verdict["enrichers"]] == [
        "caption",
        "attributes",
        "plates",
        "pose",
        "depth",
    ]
    text = json.dumps(diagnostics)
    assert "AB12CDE" not in text and "Anna" not in text


async def test_events_list_carries_the_enrichment(
    hass: HomeAssistant, entry: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """The timeline card's list command gives each event its caption, plates and identities."""
    await hand_over(hass, entry, caption="A van at the kerb.", objects=[person(), car()])
    ws = await hass_ws_client(hass)
    await ws.send_json_auto_id({"type": "secmon/events/list", "limit": 5})
    (event,) = (await ws.receive_json())["result"]["events"]
    assert event["caption"] == "A van at the kerb."
    assert event["plates"] == [{"plate": "AB12CDE", "known": "Anna's car"}]
    assert event["identities"] == ["person 7", "vehicle 2"]
    assert event["objects"][0]["also_seen"][0]["camera_name"] == "Back Yard"


ZOO_SENSORS = (
    "enrichment_memory_budget",
    "enrichment_memory_in_use",
    "enrichment_models_loaded",
    "enrichment_model_loads",
    "enrichment_model_evictions",
    "enrichments_skipped",
    "enrichment_out_of_memory_errors",
)


async def test_zoo_sensors_follow_the_sidecars_status(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The real sidecar runs enrichment: its zoo's sensors appear with its first status, their
    figures follow each status, and a status without a zoo leaves them unknown (removal at the
    next setup is the GPU sensors' path, tested there)."""
    entry = mock_config_entry
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        hass, lambda: entry.runtime_data.sidecar.status is not None, "the sidecar's status"
    )
    await hass.async_block_till_done()
    for key in ZOO_SENSORS:
        assert hass.states.get(f"sensor.secmon_sidecar_{key}") is not None, key

    status = secmon_pb2.SidecarStatus()
    status.CopyFrom(entry.runtime_data.sidecar.status)
    status.enrichment.CopyFrom(
        secmon_pb2.EnrichmentStatus(
            enrichers=["caption", "attributes", "plates"],
            device="cuda:0",
            budget_bytes=3 << 30,
            margin_bytes=256 << 20,
            in_use_bytes=1536 << 20,
            high_water_bytes=2 << 30,
            loads=7,
            evictions=3,
            skips=2,
            out_of_memory=1,
            models=[
                secmon_pb2.ZooModel(name="caption", loaded=True),
                secmon_pb2.ZooModel(name="attributes", loaded=True),
                secmon_pb2.ZooModel(name="plates", disabled="loading failed: no weights"),
            ],
        )
    )
    entry.runtime_data.async_on_status(status)
    await hass.async_block_till_done()
    budget = hass.states.get("sensor.secmon_sidecar_enrichment_memory_budget")
    assert budget is not None
    assert (float(budget.state), budget.attributes["unit_of_measurement"]) == (3072.0, "MiB")
    in_use = hass.states.get("sensor.secmon_sidecar_enrichment_memory_in_use")
    assert in_use is not None and float(in_use.state) == 1536.0
    loaded = hass.states.get("sensor.secmon_sidecar_enrichment_models_loaded")
    assert loaded is not None and loaded.state == "2"
    assert loaded.attributes["loaded"] == ["caption", "attributes"]
    assert loaded.attributes["disabled"] == {"plates": "loading failed: no weights"}
    assert loaded.attributes["high_water_bytes"] == 2 << 30
    counts = {
        key: hass.states.get(f"sensor.secmon_sidecar_{key}")
        for key in (
            "enrichment_model_loads",
            "enrichment_model_evictions",
            "enrichments_skipped",
            "enrichment_out_of_memory_errors",
        )
    }
    assert {key: s.state for key, s in counts.items() if s is not None} == {
        "enrichment_model_loads": "7",
        "enrichment_model_evictions": "3",
        "enrichments_skipped": "2",
        "enrichment_out_of_memory_errors": "1",
    }

    # The sidecar restarts with enrichment off: the zoo's sensors stay, without figures.
    status.ClearField("enrichment")
    entry.runtime_data.async_on_status(status)
    await hass.async_block_till_done()
    loaded = hass.states.get("sensor.secmon_sidecar_enrichment_models_loaded")
    assert loaded is not None and loaded.state == "unknown"
    assert "loaded" not in loaded.attributes
    assert state_of(hass, "sensor.secmon_sidecar_enrichment_memory_budget") == "unknown"
